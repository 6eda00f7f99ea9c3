"""The precision of the frozen diffusion parts: chosen in one place, held, applied by autocast.

``dtype: auto`` means float32 on a CPU and float16 elsewhere; it is resolved by the device of
the first images, so the weights are cast once, at that first call. An explicit dtype casts
them at construction, before the model is moved. Features are stored in float32 and the
trainable parts (aggregation, finecoder, head) are never touched.
"""
import contextlib
from typing import Iterable, List

import torch
from torch import nn

# The precisions a config may name besides 'auto' (DIFFConfig.dtype).
DTYPES = dict(float32=torch.float32, float16=torch.float16, bfloat16=torch.bfloat16)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """The compute precision of the frozen parts: ``auto`` = float32 on CPU, float16 elsewhere."""
    if name == 'auto':
        return torch.float32 if device.type == 'cpu' else torch.float16
    return DTYPES[name]


class FrozenPrecision:
    """Holds frozen modules in one precision and runs them under the matching autocast.

    Args:
        name: ``auto`` or a key of :data:`DTYPES`.
        modules: The frozen modules (their weights are cast in place).
    """

    def __init__(self, name: str, modules: Iterable[nn.Module]):
        self.name = name
        self._modules: List[nn.Module] = list(modules)
        self.held_dtype = torch.float32
        if name != 'auto':  # explicit: cast now, before the model is moved
            self.hold(DTYPES[name])

    def hold(self, dtype: torch.dtype) -> None:
        """Cast the modules' weights to ``dtype`` (once; nothing happens if already held)."""
        if dtype == self.held_dtype:
            return
        for module in self._modules:  # nn.Module.to: diffusers' own .to warns about fp32
            nn.Module.to(module, dtype=dtype)
        self.held_dtype = dtype

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """Hold the precision for ``device`` and return the autocast context for it."""
        dtype = resolve_dtype(self.name, device)
        self.hold(dtype)
        return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
