"""Checkpoints that are safe to load: plain types and tensors only, written atomically.

mmengine pickles its message hub (``HistoryBuffer`` objects holding numpy
arrays) into every checkpoint, so loading one with ``torch.load(weights_only=
True)`` fails, and loading it without that flag lets a file from elsewhere run
code (environment.md, pitfalls 1 and 11). Here everything that goes into a
checkpoint is converted to dicts, lists, numbers, strings and tensors first,
and converted back on load.
"""
import logging
import os
import re
from collections import OrderedDict
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, print_log

from mmseg.utils import atomic_path

PathLike = Union[str, os.PathLike]

# Marks a converted HistoryBuffer inside the plain message-hub state.
_HISTORY_TAG = '__history_buffer__'


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model (missing or unexpected keys)."""


def to_plain(obj: Any, path: str = '') -> Any:
    """Recursively convert ``obj`` into types ``torch.load(weights_only=True)`` accepts.

    HistoryBuffers become tagged dicts, numpy scalars become Python numbers,
    numpy arrays become tensors, tensors move to the CPU. Objects of any other
    class are dropped with a warning rather than pickled.

    Args:
        obj: The object to convert.
        path (str): Dotted location of ``obj``, for the warning.
    """
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {_HISTORY_TAG: True, 'log_history': np.asarray(log).tolist(),
                'count_history': np.asarray(count).tolist(),
                'max_length': int(obj.max_length)}
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.generic):  # before float: np.float64 subclasses float
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, Mapping):
        plain = ((key, to_plain(value, f'{path}.{key}')) for key, value in obj.items())
        return {k: v for k, v in plain if v is not _DROP}
    if isinstance(obj, (list, tuple)):
        items = [to_plain(value, f'{path}[{i}]') for i, value in enumerate(obj)]
        items = [value for value in items if value is not _DROP]
        return items if isinstance(obj, list) else tuple(items)
    print_log(f'checkpoint: dropping {path or "value"} of type {type(obj).__name__} '
              '(not a plain type; it would need unsafe unpickling)',
              logger='current', level=logging.WARNING)
    return _DROP


class _Drop:
    """Sentinel for values left out of a checkpoint."""


_DROP = _Drop()


def restore_message_hub_state(state: Mapping[str, Any]) -> Dict[str, Any]:
    """Turn the tagged dicts written by :func:`to_plain` back into HistoryBuffers."""
    state = dict(state)
    scalars = OrderedDict()
    for key, value in state.get('log_scalars', {}).items():
        if isinstance(value, Mapping) and value.get(_HISTORY_TAG):
            value = HistoryBuffer(value['log_history'], value['count_history'],
                                  value['max_length'])
        scalars[key] = value
    state['log_scalars'] = scalars
    return state


def save_checkpoint_atomic(checkpoint: Mapping[str, Any], path: PathLike) -> None:
    """Write ``checkpoint`` (plain types and tensors) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint_safe(path: PathLike,
                         map_location: Union[str, torch.device, None] = 'cpu') -> Dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects.

    Args:
        path: A ``.pth`` file written by this project (or any file holding only
            tensors and plain containers).
        map_location: As for :func:`torch.load`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RuntimeError: the file needs unsafe unpickling (e.g. an mmengine
            checkpoint written by another project).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises UnpicklingError or RuntimeError
        raise RuntimeError(
            f'cannot load {path} safely (torch.load weights_only=True): {error}. '
            'Only checkpoints holding tensors and plain containers are accepted; '
            'convert an old checkpoint by re-saving its state_dict as a plain dict.') from error


def extract_state_dict(checkpoint: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """The model weights of a checkpoint (``state_dict`` entry, or the dict itself)."""
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise RuntimeError('checkpoint holds no state_dict of tensors '
                           f'(top-level keys: {sorted(checkpoint)[:10]})')
    return dict(state)


def strip_prefix(state_dict: Mapping[str, torch.Tensor],
                 prefix: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Split ``state_dict`` into keys starting with ``prefix`` (prefix removed) and the rest.

    Only a prefix at the very start of a key is removed (``^model\\.``): the
    release's unanchored pattern also cut ``model.`` out of ``diff_model.`` and
    silently left the aggregator random (reference-spec §7).
    """
    pattern = re.compile('^' + re.escape(prefix))
    kept, rest = {}, {}
    for key, value in state_dict.items():
        if pattern.match(key):
            kept[pattern.sub('', key, count=1)] = value
        else:
            rest[key] = value
    return kept, rest


def _format_keys(keys: Iterable[str], limit: int = 20) -> str:
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def load_state_dict_strict(model: nn.Module,
                           state_dict: Mapping[str, torch.Tensor],
                           prefixes: Sequence[str] = ('module.', ),
                           source: str = 'checkpoint',
                           ignore_prefixes: Sequence[str] = ()) -> None:
    """Load weights into ``model``: all of them, or fail listing what does not fit.

    The expected keys are those of ``model.state_dict()`` (for DIFF this
    already leaves out the frozen Stable Diffusion weights). Each anchored
    prefix of ``prefixes`` is stripped where it matches. Keys starting with
    one of ``ignore_prefixes`` (e.g. an EMA teacher's copy) are skipped.

    Raises:
        CheckpointMismatchError: listing missing keys, unexpected keys and
        shape mismatches.
    """
    weights = dict(state_dict)
    for prefix in prefixes:
        stripped, rest = strip_prefix(weights, prefix)
        weights = {**rest, **stripped}
    weights = {k: v for k, v in weights.items()
               if not any(k.startswith(p) for p in ignore_prefixes)}
    expected = model.state_dict()
    missing = set(expected) - set(weights)
    unexpected = set(weights) - set(expected)
    shapes = [f'{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(expected[k].shape)}'
              for k in sorted(set(weights) & set(expected))
              if tuple(weights[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        lines = [f'{source} does not fit the model {type(model).__name__}:']
        if missing:
            lines.append(f'  missing keys ({len(missing)}): {_format_keys(missing)}')
        if unexpected:
            lines.append(f'  unexpected keys ({len(unexpected)}): {_format_keys(unexpected)}')
        if shapes:
            lines.append(f'  shape mismatches ({len(shapes)}): {"; ".join(shapes[:10])}')
        raise CheckpointMismatchError('\n'.join(lines))
    # strict=False: the frozen weights are absent from state_dict() by design
    # (checked above), so only they may be reported missing here.
    result = model.load_state_dict(weights, strict=False)
    leftover = set(result.unexpected_keys) | (set(result.missing_keys) & set(expected))
    if leftover:
        raise CheckpointMismatchError(f'{source}: keys not loaded: {_format_keys(leftover)}')


def plain_meta(meta: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """``meta`` converted to plain types (see :func:`to_plain`)."""
    return dict(to_plain(dict(meta or {}), 'meta'))
