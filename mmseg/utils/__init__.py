from .class_names import CITYSCAPES_METAINFO, CLASSES, IGNORE_INDEX, NUM_CLASSES, PALETTE
from .io import (DiskFullError, apply_umask_permissions, atomic_path, atomic_write_bytes,
                 atomic_write_text, remove_stale_temp_files)
from .misc import add_prefix, stable_seed
from .typing_utils import (ConfigType, MultiConfig, OptConfigType, OptMultiConfig,
                           OptSampleList, SampleList)
from .visualization import colorize, error_map, legend, overlay, prediction_figure

__all__ = [
    'CITYSCAPES_METAINFO', 'CLASSES', 'IGNORE_INDEX', 'NUM_CLASSES', 'PALETTE', 'DiskFullError',
    'apply_umask_permissions', 'atomic_path', 'atomic_write_bytes', 'atomic_write_text',
    'remove_stale_temp_files',
    'add_prefix', 'stable_seed', 'ConfigType', 'MultiConfig', 'OptConfigType', 'OptMultiConfig',
    'OptSampleList', 'SampleList', 'colorize', 'error_map', 'legend', 'overlay',
    'prediction_figure'
]
