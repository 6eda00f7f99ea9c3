"""Data pipeline transforms (registered in ``mmseg.registry.TRANSFORMS``)."""
from .formatting import PackSegInputs
from .loading import LoadAnnotations, LoadImageFromFile, check_label_values, read_label
from .transforms import PhotoMetricDistortion, RandomCrop, RandomFlip, Resize

__all__ = [
    'LoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomCrop', 'RandomFlip',
    'PhotoMetricDistortion', 'PackSegInputs', 'check_label_values', 'read_label'
]
