# Importing the sub-packages registers their components in mmseg.registry.MODELS.
from . import backbones, decode_heads, losses, segmentors, uda  # noqa: F401
from .data_preprocessor import SegDataPreProcessor

__all__ = ['SegDataPreProcessor']
