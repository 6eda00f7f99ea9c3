from .metrics import CityscapesMetric, IoUMetric
from .submission import SubmissionWriter

__all__ = ['CityscapesMetric', 'IoUMetric', 'SubmissionWriter']
