from .class_names import CITYSCAPES_METAINFO, CLASSES, IGNORE_INDEX, NUM_CLASSES, PALETTE
from .io import atomic_path, atomic_write_bytes, atomic_write_text
from .misc import add_prefix, stable_seed
from .typing_utils import (ConfigType, MultiConfig, OptConfigType, OptMultiConfig,
                           OptSampleList, SampleList)
from .visualization import colorize, overlay

__all__ = [
    'CITYSCAPES_METAINFO', 'CLASSES', 'IGNORE_INDEX', 'NUM_CLASSES', 'PALETTE', 'atomic_path',
    'atomic_write_bytes', 'atomic_write_text', 'add_prefix', 'stable_seed', 'ConfigType',
    'MultiConfig', 'OptConfigType', 'OptMultiConfig', 'OptSampleList', 'SampleList', 'colorize',
    'overlay'
]
