"""Recording outputs of UNet sub-modules with forward hooks (no forward is replaced)."""
from typing import Dict, Hashable, Iterable, List, Tuple

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


class FeatureRecorder:
    """Record the outputs of given modules during the calls made inside a ``with`` block.

    Hooks are registered on entry and removed on exit, so nothing stays attached to the
    diffusers modules after the block (the extractor opens one block per eager UNet call; a
    compiled UNet keeps one open until it is closed). Only the latest output of each module
    is kept.

    Args:
        modules: ``(key, module)`` pairs; the output of ``module`` is stored under ``key``.
    """

    def __init__(self, modules: Iterable[Tuple[Hashable, nn.Module]]):
        self._modules: List[Tuple[Hashable, nn.Module]] = list(modules)
        self._handles: List[RemovableHandle] = []
        self.features: Dict[Hashable, Tensor] = {}

    def __enter__(self) -> 'FeatureRecorder':
        self.features = {}
        for key, module in self._modules:
            self._handles.append(module.register_forward_hook(self._make_hook(key)))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def active(self) -> bool:
        """Whether hooks are attached right now."""
        return bool(self._handles)

    def _make_hook(self, key: Hashable):
        def hook(module: nn.Module, inputs, output) -> None:
            # Transformer2DModel returns a tuple when called with return_dict=False; the
            # hooked sub-modules (conv2, BasicTransformerBlock) return a plain tensor.
            self.features[key] = output[0] if isinstance(output, tuple) else output
        return hook
