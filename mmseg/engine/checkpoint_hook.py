"""mmengine's CheckpointHook with a named checkpoint selection and without its FileClient.

The base of the kill-safe ``SafeCheckpointHook`` (:mod:`mmseg.engine.guards`) that
:class:`~mmseg.engine.SafeRunner` puts in place of every ``CheckpointHook``. Two changes:

- ``selection``: which checkpoint a run hands on. ``'last'`` (the release's choice, the
  default) keeps the interval checkpoints, of which the last is used. ``'best:<metric>'``, e.g.
  ``'best:cityscapes/mIoU'``, also keeps ``best_<metric>_iter_<N>.pth``, the checkpoint with the
  highest value of that validation metric (mmengine's ``save_best`` / ``rule='greater'``).
  Selecting on a target domain's validation set uses target labels: that is model selection
  on the target, not domain generalisation.
- mmengine 0.10 builds a ``FileClient`` in ``before_train`` only for backward compatibility
  (unused unless ``file_client_args`` is given), which logs two deprecation warnings at every
  start. Without ``file_client_args`` this hook skips it; everything else is mmengine's.
"""
import contextlib
from typing import Iterator, Optional, Tuple

from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmengine.hooks import checkpoint_hook as _mmengine_checkpoint_hook

from mmseg.registry import HOOKS

SELECTIONS = ('last', 'best:<metric>')


def parse_selection(selection: str) -> Tuple[Optional[str], Optional[str]]:
    """``(save_best, rule)`` for a checkpoint selection: ``'last'`` or ``'best:<metric>'``.

    Raises:
        ValueError: ``selection`` is neither, or names no metric.
    """
    if selection == 'last':
        return None, None
    if isinstance(selection, str) and selection.startswith('best:'):
        metric = selection[len('best:'):].strip()
        if metric:
            return metric, 'greater'
    raise ValueError(f'checkpoint selection must be {SELECTIONS[0]!r} or {SELECTIONS[1]!r} '
                     f"(e.g. 'best:cityscapes/mIoU'), got {selection!r}")


class _NoFileClient:
    """Stands in for mmengine's deprecated FileClient while ``before_train`` runs."""

    @staticmethod
    def infer_client(*args, **kwargs) -> None:
        return None


@contextlib.contextmanager
def _without_file_client() -> Iterator[None]:
    original = _mmengine_checkpoint_hook.FileClient
    _mmengine_checkpoint_hook.FileClient = _NoFileClient
    try:
        yield
    finally:
        _mmengine_checkpoint_hook.FileClient = original


@HOOKS.register_module()
class SegCheckpointHook(MMEngineCheckpointHook):
    """mmengine's CheckpointHook plus ``selection`` (see module docstring).

    Args:
        selection (str, optional): ``'last'`` or ``'best:<metric>'``; sets ``save_best`` and
            ``rule``. None (default) leaves ``save_best``/``rule`` as given (mmengine's
            arguments), i.e. ``'last'`` unless ``save_best`` is set.
        **kwargs: mmengine's CheckpointHook arguments.
    """

    def __init__(self, *args, selection: Optional[str] = None, **kwargs) -> None:
        if selection is not None:
            if kwargs.get('save_best') is not None:
                raise ValueError('CheckpointHook: give either selection or save_best, not both')
            kwargs['save_best'], kwargs['rule'] = parse_selection(selection)
        self.selection = selection or (f"best:{kwargs['save_best']}"
                                       if kwargs.get('save_best') else 'last')
        super().__init__(*args, **kwargs)

    def before_train(self, runner) -> None:
        """mmengine's ``before_train``, without the unused FileClient."""
        self._check_selected_domain(runner)
        if self.file_client_args is not None:
            super().before_train(runner)
            return
        with _without_file_client():
            super().before_train(runner)
        if self.save_best is not None:
            runner.logger.info(f'Checkpoint selection: {self.selection} (best_*.pth is kept '
                               'besides the interval checkpoints)')

    def _check_selected_domain(self, runner) -> None:
        """A 'best' metric must name a validated domain (checked before training starts)."""
        domains = list(getattr(getattr(runner, '_val_loop', None), 'domains', None) or [])
        for key in (self.key_indicators if self.save_best is not None else []):
            domain = key.split('/')[0] if '/' in key else None
            if domains and domain is not None and domain not in domains:
                raise ValueError(f'checkpoint selection best:{key}: validation has no domain '
                                 f'{domain!r} (it validates {domains})')
