from .cityscapes_metric import CityscapesMetric
from .iou_metric import IoUMetric, intersect_and_union

__all__ = ['CityscapesMetric', 'IoUMetric', 'intersect_and_union']
