"""Unsupervised domain adaptation: DACS self-training around a segmentor."""
from .dacs import DACS
from .debug_images import UDADebugHook
from .ema_teacher import EMATeacher
from .uda_decorator import UDADecorator

__all__ = ['DACS', 'EMATeacher', 'UDADecorator', 'UDADebugHook']
