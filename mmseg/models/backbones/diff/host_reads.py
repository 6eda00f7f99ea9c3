"""Every value the model copies from a tensor to Python, each read under a name.

A few steps need tensor values on the host (on a GPU each is a device sync):

``label_classes``
    the sorted distinct values of a label map: the prompted classes present in the
    extractor's label map (path control) and DACS's ClassMix candidate classes.
``valid_pixels``
    the number of non-ignored pixels in the accuracy metric.
``iteration``
    DACS's iteration counter (a buffer, so a resumed run continues its EMA schedule).
``augmentation_draw``
    DACS's per-batch uniform draws that decide colour jitter and blur.

Fake tensors (``torch._subclasses.fake_tensor.FakeTensorMode``: shapes, dtypes and devices
without data) have no values to read. Inside :func:`supply`, a read of a supplied name
returns ``function(tensor)`` instead of reading the tensor, so the full-size model runs on a
fake CUDA device without a GPU, e.g.::

    with FakeTensorMode(), host_reads.supply(label_classes=lambda t: [0, 1, 2, 255]):
        ...

Outside :func:`supply` the reads are plain ``torch.unique(...).tolist()`` and ``.item()``.
"""
import contextlib
import contextvars
from typing import Any, Callable, Dict, Iterator, List

import torch
from torch import Tensor

READS = ('label_classes', 'valid_pixels', 'iteration', 'augmentation_draw')

_SUPPLIED: contextvars.ContextVar[Dict[str, Callable[[Tensor], Any]]] = contextvars.ContextVar(
    'host_reads_supplied', default={})


def _supplied(name: str) -> Callable[[Tensor], Any]:
    if name not in READS:
        raise ValueError(f'host_reads: unknown read {name!r}; expected one of {READS}')
    return _SUPPLIED.get().get(name)


def distinct_values(name: str, tensor: Tensor) -> List:
    """Sorted distinct values of ``tensor`` as a Python list (one sync)."""
    function = _supplied(name)
    if function is not None:
        return sorted(function(tensor))
    return torch.unique(tensor).tolist()


def item(name: str, tensor: Tensor) -> Any:
    """The Python number held by the one-element ``tensor`` (one sync)."""
    function = _supplied(name)
    if function is not None:
        return function(tensor)
    return tensor.item()


@contextlib.contextmanager
def supply(**functions: Callable[[Tensor], Any]) -> Iterator[None]:
    """Within the block, a read named ``name`` returns ``functions[name](tensor)``.

    Names not given are read from the tensors as usual; nested blocks add to (and override)
    the outer block's functions.
    """
    unknown = sorted(set(functions) - set(READS))
    if unknown:
        raise ValueError(f'host_reads.supply: unknown reads {unknown}; expected names from '
                         f'{READS}')
    token = _SUPPLIED.set({**_SUPPLIED.get(), **functions})
    try:
        yield
    finally:
        _SUPPLIED.reset(token)
