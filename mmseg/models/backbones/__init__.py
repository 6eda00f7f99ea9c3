# Importing the modules registers their components in mmseg.registry.MODELS.
from .diff_backbone import DIFF

__all__ = ['DIFF']
