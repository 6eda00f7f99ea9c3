# Importing the modules registers their components in mmseg.registry.MODELS.
from .diff_backbone import DIFF
from .mit import MiT

__all__ = ['DIFF', 'MiT']
