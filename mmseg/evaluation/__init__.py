from .metrics import CityscapesMetric, IoUMetric

__all__ = ['CityscapesMetric', 'IoUMetric']
