"""Model helpers. ``dacs_transforms`` lives here too but is imported by its full path."""
from .wrappers import pad_right_bottom, padded_size, resize

__all__ = ['pad_right_bottom', 'padded_size', 'resize']
