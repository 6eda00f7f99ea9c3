"""The frozen UNet through ``torch.compile``, with the feature hooks it needs attached.

The hooks of every recorded layer stay attached for the life of a :class:`CompiledUNet`
(they are part of the compiled graph; adding and removing them per call would recompile), so
each call records all levels; :meth:`CompiledUNet.close` detaches them. The row dimension is
marked dynamic: a different number of rows (prompted classes, batch size) does not compile
again. The spatial size is static: each new image size compiles once.
"""
import contextlib
from typing import Any, Dict, Hashable, Iterable, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from .hooks import FeatureRecorder


def call_unet(unet: nn.Module, inputs: Tensor, timestep: Tensor,
              conditioning: Mapping[str, Any]) -> Tensor:
    """The UNet's output for ``inputs`` at ``timestep`` with the conditioning keyword
    arguments (``encoder_hidden_states`` and any extra inputs the UNet takes)."""
    return unet(inputs, timestep, return_dict=False, **conditioning)[0]


class CompiledUNet:
    """``call_unet`` compiled, with a :class:`FeatureRecorder` attached until :meth:`close`.

    Args:
        unet: The frozen UNet.
        modules: ``(key, module)`` pairs whose outputs are recorded at every call.
        options: Keyword arguments of ``torch.compile`` (default: inductor).
    """

    def __init__(self, unet: nn.Module, modules: Iterable[Tuple[Hashable, nn.Module]],
                 options: Optional[Dict[str, Any]] = None):
        self.unet = unet
        self.recorder = FeatureRecorder(modules)
        self._open = contextlib.ExitStack()
        self._open.enter_context(self.recorder)
        self.function = torch.compile(call_unet, **dict(options or {}))

    def __call__(self, inputs: Tensor, timestep: Tensor, conditioning: Mapping[str, Any]
                 ) -> Tuple[Tensor, Dict[Hashable, Tensor]]:
        """The UNet output and the recorded outputs of this call."""
        for tensor in (inputs, conditioning['encoder_hidden_states']):
            torch._dynamo.maybe_mark_dynamic(tensor, 0)
        out = self.function(self.unet, inputs, timestep, dict(conditioning))
        return out, dict(self.recorder.features)

    def close(self) -> None:
        """Detach the hooks from the UNet (e.g. before handing it to another extractor)."""
        self._open.close()
