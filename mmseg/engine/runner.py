"""A Runner whose checkpoints are safe to load and written atomically.

Checkpoint contents (all plain types and tensors):

- ``meta``: epoch, iter, cfg (text), seed, experiment_name, time,
  mmengine_version, dataset_meta;
- ``state_dict``: the model's trainable weights (the DIFF backbone's
  ``state_dict`` leaves out the frozen Stable Diffusion weights);
- ``message_hub``: logged scalars and runtime info (HistoryBuffers as dicts);
- ``optimizer`` and ``param_schedulers`` states;
- ``rng_state``: the global random states (torch, numpy, random), restored
  when resuming by :class:`ResumableIterBasedTrainLoop` once the dataloader has
  been advanced, so that 2 + resume + 2 iterations equal 4.

Loading uses ``torch.load(weights_only=True)``; the weights must fit the model
exactly, or loading fails listing the missing and unexpected keys.

Console: the environment report, the resolved config and the hook order go to the log file
only (``<work_dir>/<timestamp>/<timestamp>.log``); the config key ``verbose = True`` (the
``--verbose`` flag of the tools) prints them on the screen as well.

Checkpoint selection: the config key ``checkpoint_selection`` (``'last'``, the default, or
``'best:<domain>/mIoU'``) is handed to the ``CheckpointHook`` (see
:mod:`mmseg.engine.checkpoint_hook`).
"""
import logging
import os.path as osp
import time
from typing import Callable, Optional, Union

import mmengine
from mmengine.dist import master_only
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import weights_to_cpu

from mmseg.registry import RUNNERS
from mmseg.utils import atomic_write_text

from .checkpoint import (SD_META_KEY, check_finite_weights, check_sd_fingerprint,
                         extract_state_dict, load_checkpoint_safe, load_state_dict_strict,
                         model_sd_record, plain_meta, restore_message_hub_state,
                         save_checkpoint_atomic, to_plain)
from .checkpoint_hook import parse_selection
from .guards import NonFiniteGuardHook, SafeCheckpointHook
from .rng import capture_rng_state
from .validation import check_type_kwargs
from .workdir import resolve_last_checkpoint


def _safe_checkpoint_cfg(hook):
    """A CheckpointHook config with mmengine's class replaced by :class:`SafeCheckpointHook`."""
    if isinstance(hook, dict) and hook.get('type') in ('CheckpointHook', CheckpointHook):
        hook = dict(hook, type=SafeCheckpointHook)
    return hook

# Start of the log records that go to the log file only, unless the config says verbose=True.
FILE_ONLY_RECORDS = ('\n' + '-' * 60 + '\nSystem environment:', 'Config:\n',
                     'Hooks will be executed in the following order',
                     'Distributed training is not used, all SyncBatchNorm',
                     # mmengine's one-line dump of every validation/test metric (thousands of
                     # characters); the per-domain tables show the same numbers
                     'Iter(val)', 'Iter(test)', 'Epoch(val)', 'Epoch(test)')


class FileOnlyFilter(logging.Filter):
    """Keeps the environment report, config dump and hook table off the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ''
        return not message.startswith(FILE_ONLY_RECORDS)


def _is_console_handler(handler: logging.Handler) -> bool:
    return (isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler))


def with_checkpoint_selection(default_hooks: Optional[dict],
                              selection: Optional[str]) -> Optional[dict]:
    """``default_hooks`` with ``selection`` handed to its ``checkpoint`` hook config.

    Raises:
        ValueError: the checkpoint hook config already chooses differently (its own
            ``selection`` or ``save_best``).
    """
    if selection is None or not isinstance((default_hooks or {}).get('checkpoint'), dict):
        return default_hooks
    save_best, rule = parse_selection(selection)
    hook = dict(default_hooks['checkpoint'])
    own = hook.pop('selection', None) or (f"best:{hook['save_best']}"
                                          if hook.get('save_best') else None)
    if own is not None and own != selection:
        raise ValueError(f'checkpoint_selection={selection!r} conflicts with '
                         f'default_hooks.checkpoint ({own!r}); set only one of them')
    if save_best is not None and hook.get('save_best') is None:
        hook.update(save_best=save_best, rule=rule)
    return dict(default_hooks, checkpoint=hook)


@RUNNERS.register_module()
class SafeRunner(Runner):
    """mmengine's Runner with safe, atomic checkpoints (see module docstring)."""

    #: random states of the checkpoint being resumed, consumed by the train loop
    pending_rng_state = None

    def build_logger(self, log_level: Union[int, str] = 'INFO', log_file: Optional[str] = None,
                     **kwargs):
        """mmengine's logger; unless ``cfg.verbose``, long reports go to the log file only."""
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        if not (self.cfg or {}).get('verbose', False):
            for handler in logger.handlers:
                if _is_console_handler(handler) and not any(
                        isinstance(f, FileOnlyFilter) for f in handler.filters):
                    handler.addFilter(FileOnlyFilter())
            quiet_library_progress_bars()
            files = [h.baseFilename for h in logger.handlers
                     if isinstance(h, logging.FileHandler)]
            if files:
                logger.info(f'Log file (with the environment, resolved config and hook order; '
                            f'--verbose prints them here): {files[0]}')
        return logger

    def register_default_hooks(self, hooks=None) -> None:
        """mmengine's default hooks, with the kill-safe checkpoint hook (see module docstring)."""
        hooks = with_checkpoint_selection(dict(hooks or {}),
                                          (self.cfg or {}).get('checkpoint_selection'))
        hooks['checkpoint'] = _safe_checkpoint_cfg(
            hooks.get('checkpoint', dict(type='CheckpointHook', interval=1)))
        for name, hook in hooks.items():
            if isinstance(hook, dict):
                check_type_kwargs(hook, f'default_hooks.{name}')
        super().register_default_hooks(hooks)

    def register_custom_hooks(self, hooks) -> None:
        """The config's custom hooks, their arguments checked first."""
        for index, hook in enumerate(hooks):
            if isinstance(hook, dict):
                check_type_kwargs(hook, f'custom_hooks[{index}]')
        super().register_custom_hooks(hooks)

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        """Default and custom hooks, plus the non-finite guard (always)."""
        super().register_hooks(default_hooks, custom_hooks)
        if not any(isinstance(h, NonFiniteGuardHook) for h in self._hooks):
            self.register_hook(NonFiniteGuardHook())

    @property
    def bare_model(self):
        """The model without its DDP (or other) wrapper."""
        return self.model.module if is_model_wrapper(self.model) else self.model

    @master_only
    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """Write ``out_dir/filename`` (same arguments as mmengine's Runner)."""
        meta = dict(meta or {})
        # The hook calls this after the iteration finished: the next one to run
        # is self.iter + 1 (mmengine's convention, kept so resume lines up).
        meta.setdefault('epoch', self.epoch + 1 if by_epoch else self.epoch)
        meta.setdefault('iter', self.iter if by_epoch else self.iter + 1)
        meta.update(cfg=self.cfg.pretty_text, seed=self.seed,
                    experiment_name=self.experiment_name,
                    time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
                    mmengine_version=mmengine.__version__)
        dataset = getattr(self.train_dataloader, 'dataset', None)
        if hasattr(dataset, 'metainfo'):
            meta.update(dataset_meta=dataset.metainfo)
        meta[SD_META_KEY] = model_sd_record(self.bare_model)
        checkpoint = dict(meta=plain_meta(meta),
                          state_dict=weights_to_cpu(self.bare_model.state_dict()),
                          message_hub=to_plain(self.message_hub.state_dict(), 'message_hub'))
        if save_optimizer:
            checkpoint['optimizer'] = to_plain(self.optim_wrapper.state_dict(), 'optimizer')
        if save_param_scheduler and self.param_schedulers is not None:
            if isinstance(self.param_schedulers, dict):
                checkpoint['param_schedulers'] = {
                    name: [to_plain(s.state_dict(), 'param_schedulers') for s in group]
                    for name, group in self.param_schedulers.items()}
            else:
                checkpoint['param_schedulers'] = [
                    to_plain(s.state_dict(), 'param_schedulers') for s in self.param_schedulers]
        checkpoint['rng_state'] = capture_rng_state()
        self.call_hook('before_save_checkpoint', checkpoint=checkpoint)
        save_checkpoint_atomic(checkpoint, osp.join(out_dir, filename))

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = True,
                        revise_keys: Optional[list] = None) -> dict:
        """Load ``filename`` safely; its weights must fit the model exactly.

        ``strict`` and ``revise_keys`` are accepted for mmengine's interface;
        loading is always strict and only an anchored ``module.`` prefix is
        stripped.
        """
        checkpoint = load_checkpoint_safe(filename, map_location=map_location)
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = restore_message_hub_state(checkpoint['message_hub'])
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        weights = extract_state_dict(checkpoint)
        check_finite_weights(weights, str(filename))
        check_sd_fingerprint(checkpoint, self.bare_model, str(filename),
                             allow_other=bool(self.cfg.get('allow_other_sd', False)))
        load_state_dict_strict(self.bare_model, weights, prefixes=('module.', ),
                               source=str(filename))
        self._has_loaded = True
        self._loaded_checkpoint_rng = checkpoint.get('rng_state')
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def load_or_resume(self) -> None:
        """mmengine's, with ``--resume`` (no file) reading the work dir's own latest checkpoint.

        ``last_checkpoint`` is relative to the work dir (:mod:`mmseg.engine.workdir`), so a
        copied or moved run resumes from its own files.
        """
        if self._has_loaded:
            return
        if self._resume and self._load_from is None:
            latest = resolve_last_checkpoint(self.work_dir)
            if latest is None:
                self.logger.info(f'--resume: no checkpoint in {self.work_dir} yet; training '
                                 'starts at iteration 0')
                self._resume = False
                return
            self.logger.info(f'Resuming from the work dir\'s latest checkpoint {latest}')
            self._load_from = latest
        super().load_or_resume()

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        """mmengine's resume, plus the random states for the train loop to restore."""
        super().resume(filename, resume_optimizer=resume_optimizer,
                       resume_param_scheduler=resume_param_scheduler, map_location=map_location)
        self.pending_rng_state = getattr(self, '_loaded_checkpoint_rng', None)

    @master_only
    def dump_config(self) -> None:
        """Write the resolved config into the work dir (atomically)."""
        name = osp.basename(self.cfg.filename) if self.cfg.filename else f'{self.timestamp}.py'
        if not name.endswith('.py'):
            name = osp.splitext(name)[0] + '.py'
        atomic_write_text(osp.join(self.work_dir, name), self.cfg.pretty_text)


def quiet_library_progress_bars() -> None:
    """No 'Loading weights' bars from transformers/diffusers when the frozen model loads."""
    for module in ('transformers.utils.logging', 'diffusers.utils.logging'):
        try:
            library_logging = __import__(module, fromlist=['disable_progress_bar'])
        except ImportError:
            continue
        library_logging.disable_progress_bar()
