"""Checkpoints that are safe to load: plain types and tensors only, written atomically.

mmengine pickles its message hub (``HistoryBuffer`` objects holding numpy
arrays) into every checkpoint, so loading one with ``torch.load(weights_only=
True)`` fails, and loading it without that flag lets a file from elsewhere run
code (docs/pitfalls.md #1 and #11). Here everything that goes into a
checkpoint is converted to dicts, lists, numbers, strings and tensors first,
and converted back on load.
"""
import functools
import logging
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

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


class NotACheckpointError(RuntimeError):
    """A file is empty, corrupt, not written by ``torch.save``, or holds pickled objects."""


class NonFiniteWeightsError(RuntimeError):
    """A checkpoint holds NaN or infinite weights (the run it comes from diverged)."""


class OtherStableDiffusionError(RuntimeError):
    """A checkpoint was trained with another Stable Diffusion folder than the model's."""


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
    """Write ``checkpoint`` (plain types and tensors) to ``path`` atomically.

    Raises:
        DiskFullError: the disk filled up during the write (naming the file and the
            free space); ``path`` is left as it was.
    """
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def _not_a_checkpoint(path: str, why: str) -> NotACheckpointError:
    return NotACheckpointError(f'{path} is not a checkpoint: {why}. Expected a .pth written '
                               'by this project\'s training or tools/publish_model.py.')


def load_checkpoint_safe(path: PathLike,
                         map_location: Union[str, torch.device, None] = 'cpu',
                         mmap: bool = False) -> Dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects.

    Args:
        path: A ``.pth`` file written by this project (or any file holding only
            tensors and plain containers).
        map_location: As for :func:`torch.load`.
        mmap: Map the tensors instead of reading them (cheap when only ``meta`` is needed).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        NotACheckpointError: the file is empty or corrupt, not a ``torch.save`` zip
            archive, or holds objects other than tensors and plain containers (such a
            file is refused: loading it could run code from the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    size = os.path.getsize(path)
    if size == 0:
        raise _not_a_checkpoint(path, 'the file is empty (0 bytes; an interrupted copy?)')
    if not zipfile.is_zipfile(path):
        raise _not_a_checkpoint(path, f'the file ({size} bytes) is not a torch.save archive '
                                '(corrupt, truncated or another format)')
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        found = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(error))
        what = f' (e.g. {found.group(1)})' if found else ''
        raise _not_a_checkpoint(
            path, f'it holds pickled Python objects{what}, not only tensors and plain '
            'containers, and this project cannot load it safely (loading it could run code from '
            'the file); re-save its state_dict as a plain dict of tensors') from None
    except Exception as error:  # zip member missing or truncated, bad records
        cause = str(error).strip().splitlines()[0][:200] if str(error).strip() else \
            type(error).__name__
        raise _not_a_checkpoint(path, f'the archive is corrupt ({cause})') from None
    if not isinstance(checkpoint, dict):
        raise _not_a_checkpoint(path, f'it holds a {type(checkpoint).__name__}, not a dict')
    return checkpoint


def check_finite_weights(state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise :class:`NonFiniteWeightsError` naming the tensors of ``state_dict`` with NaN/inf.

    Args:
        state_dict: Weights (floating-point tensors are checked).
        source: The file they come from, for the message.
    """
    bad = [f'{key} ({int((~torch.isfinite(value)).sum())}/{value.numel()} values)'
           for key, value in state_dict.items()
           if isinstance(value, torch.Tensor) and value.is_floating_point()
           and not bool(torch.isfinite(value).all())]
    if bad:
        raise NonFiniteWeightsError(
            f'{source} holds non-finite (NaN or infinite) weights in {len(bad)} of '
            f'{len(state_dict)} tensors: {_format_keys(bad, limit=8)}. The training run '
            'diverged; use an earlier checkpoint or retrain with a smaller learning rate.')


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
    silently left the aggregator random (docs/method.md §7).
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


# --- the frozen Stable Diffusion model a checkpoint was trained with -----------------------

#: checkpoint ``meta`` key holding ``[dict(model_id=<folder>, fingerprint=<dict>), ...]``
SD_META_KEY = 'stable_diffusion'


@functools.lru_cache(maxsize=None)
def _cached_fingerprint(folder: str) -> Dict[str, Any]:
    from mmseg.models.backbones.diff import fingerprint_sd_folder
    return fingerprint_sd_folder(folder)


def sd_fingerprint(folder: PathLike) -> Dict[str, Any]:
    """:func:`fingerprint_sd_folder` of ``folder``, computed once per process and folder."""
    return dict(_cached_fingerprint(os.path.realpath(os.fspath(folder))))


def model_sd_folders(model: nn.Module) -> List[str]:
    """The Stable Diffusion folders (``model_id``) of the DIFF backbones in ``model``, in order."""
    folders: List[str] = []
    for module in model.modules():
        config = getattr(getattr(module, 'encoder', None), 'config', None)
        folder = getattr(config, 'model_id', None)
        if isinstance(folder, str) and folder not in folders:
            folders.append(folder)
    return folders


def model_sd_record(model: nn.Module) -> List[Dict[str, Any]]:
    """What a checkpoint records about the frozen models of ``model`` (see :data:`SD_META_KEY`)."""
    return [dict(model_id=folder, fingerprint=sd_fingerprint(folder))
            for folder in model_sd_folders(model)]


def _difference(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    parts = []
    for key in ('unet', 'prediction_type'):
        if saved.get(key) != current.get(key):
            if isinstance(saved.get(key), Mapping) and isinstance(current.get(key), Mapping):
                keys = sorted(k for k in set(saved[key]) | set(current[key])
                              if saved[key].get(k) != current[key].get(k))
                parts.append(f'{key} ' + ', '.join(
                    f'{k}: {saved[key].get(k)} vs {current[key].get(k)}' for k in keys))
            else:
                parts.append(f'{key}: {saved.get(key)} vs {current.get(key)}')
    return '; '.join(parts) or 'same architecture, different weight or config files'


def check_sd_fingerprint(checkpoint: Mapping[str, Any], model: nn.Module, source: str,
                         allow_other: bool = False) -> None:
    """Compare the frozen model recorded in ``checkpoint`` with the one ``model`` uses.

    A checkpoint without a record (older, or a model without DIFF backbone) only warns.

    Raises:
        OtherStableDiffusionError: the fingerprints differ, naming both folders and what
            differs; with ``allow_other`` this is a warning instead.
    """
    current = model_sd_record(model)
    if not current:
        return
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), Mapping) else {}
    saved = meta.get(SD_META_KEY)
    if not saved:
        print_log(f'{source} records no Stable Diffusion fingerprint (an older checkpoint): '
                  f'cannot check that it was trained with {current[0]["model_id"]}',
                  logger='current', level=logging.WARNING)
        return
    for old, new in zip(saved, current):
        if old.get('fingerprint', {}).get('sha256') == new['fingerprint']['sha256']:
            continue
        message = (f'{source} was trained with the Stable Diffusion folder {old.get("model_id")}'
                   f', but the model now uses {new["model_id"]}, which differs '
                   f'({_difference(old.get("fingerprint", {}), new["fingerprint"])}). '
                   'Predictions would not be those of the trained model.')
        if not allow_other:
            raise OtherStableDiffusionError(
                message + ' Point model_id at the folder it was trained with, or pass '
                '--allow-other-sd (config key allow_other_sd=True) to use it anyway.')
        print_log(message + ' Continuing (allow_other_sd).', logger='current',
                  level=logging.WARNING)
