"""Hooks that keep a long run from failing late or training garbage silently.

- :class:`NonFiniteGuardHook` stops training at the first iteration whose loss (any term) or
  gradient norm is NaN or infinite, before any checkpoint of it is written.
- :class:`SafeCheckpointHook` is mmengine's CheckpointHook with a kill-safe order: the new
  checkpoint is written completely (atomically), then ``last_checkpoint`` is replaced
  atomically, and only then are old checkpoints (``max_keep_ckpts``) removed. Temporary files
  left by a killed save are removed when training starts or resumes.

:class:`~mmseg.engine.runner.SafeRunner` registers both without any config entry.
"""
import contextlib
import logging
import math
import os
import os.path as osp
import re
from typing import List, Mapping, Optional

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmseg.registry import HOOKS
from mmseg.utils import remove_stale_temp_files

# mmengine's CheckpointHook plus `selection`, without the deprecated FileClient
from .checkpoint_hook import SegCheckpointHook as CheckpointHook
from .workdir import resolve_last_checkpoint, write_last_checkpoint


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient norm."""


def _loss_terms(outputs: Optional[Mapping]) -> List[tuple]:
    """(name, tensor or number) of the loss terms in ``outputs`` (keys containing 'loss')."""
    if not isinstance(outputs, Mapping):
        return []
    return [(key, value) for key, value in outputs.items()
            if 'loss' in key and isinstance(value, (torch.Tensor, float, int))]


def _as_float(value) -> float:
    return float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else \
        float(value)


def all_ranks_true(flag: bool) -> bool:
    """``flag`` of every process combined (logical and); ``flag`` itself without a group."""
    if get_world_size() <= 1:
        return flag
    bad = torch.tensor([0 if flag else 1], dtype=torch.int32)
    all_reduce(bad, op='max')  # moved to the backend's device and back by mmengine
    return int(bad.item()) == 0


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Stop training with one clear error at the first non-finite loss or gradient norm.

    It runs after each training iteration, before the checkpoint hook (priority
    ``ABOVE_NORMAL`` < ``VERY_LOW``), so a diverged iteration is never saved: the last
    checkpoint written stays the last good one. The check costs one host synchronisation
    per iteration (the logger synchronises for the same values anyway). The gradient norm
    is the one ``clip_grad`` computes (``train/grad_norm``); with a dynamic loss scale
    (``AmpOptimWrapper``) an infinite gradient norm is a skipped step, not a failure.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        terms = _loss_terms(outputs)
        tensors = [v.detach().float().mean().reshape(1) for _, v in terms
                   if isinstance(v, torch.Tensor)]
        finite = bool(torch.isfinite(torch.cat(tensors)).all()) if tensors else True
        finite = finite and all(math.isfinite(v) for _, v in terms
                                if not isinstance(v, torch.Tensor))
        grad_norm = self._grad_norm(runner)
        local_ok = finite and (grad_norm is None or math.isfinite(grad_norm))
        if all_ranks_true(local_ok):
            return
        bad = [f'{key}={_as_float(value)}' for key, value in terms
               if not math.isfinite(_as_float(value))]
        if grad_norm is not None and not math.isfinite(grad_norm):
            bad.append(f'grad_norm={grad_norm}')
        if not bad:
            bad = ['loss or gradient norm on another process (rank)']
        raise NonFiniteLossError(self._message(runner, bad))

    @staticmethod
    def _grad_norm(runner) -> Optional[float]:
        from mmengine.optim import AmpOptimWrapper
        wrappers = getattr(runner.optim_wrapper, 'optim_wrappers', None) or {
            '': runner.optim_wrapper}
        if any(isinstance(w, AmpOptimWrapper) for w in wrappers.values()):
            return None
        scalars = runner.message_hub.log_scalars
        if 'train/grad_norm' not in scalars:
            return None
        return float(scalars['train/grad_norm'].current())

    @staticmethod
    def _message(runner, bad: List[str]) -> str:
        try:
            last = resolve_last_checkpoint(runner.work_dir) or ''
        except (OSError, RuntimeError):
            last = ''
        resume = (f' The last good checkpoint is {last}; resume it with --resume after '
                  'fixing the cause.' if last else ' No checkpoint was written before it.')
        return (f'training stopped at iteration {runner.iter + 1}: non-finite '
                f'{", ".join(bad)}. This iteration was not saved.{resume} Common causes: '
                'a learning rate too high, a NaN/inf config value, corrupt inputs.')


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """CheckpointHook whose saves survive a kill at any moment (see module docstring)."""

    #: the step of the last checkpoint this hook wrote (None before the first)
    saved_step: Optional[int] = None

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._rebase_best_checkpoints()
        if not is_main_process():
            return
        for folder in {runner.work_dir, self.out_dir}:
            for path in remove_stale_temp_files(folder):
                print_log(f'removed {path}, left by an interrupted checkpoint save',
                          logger='current', level=logging.WARNING)
        self._remove_untracked_old_checkpoints()

    def _rebase_best_checkpoints(self) -> None:
        """Best checkpoints named by a resumed state are this work dir's files of that name.

        The state records absolute paths; in a copied or moved run folder they would name (and,
        on a new best, delete) the other folder's file.
        """
        if getattr(self, 'best_ckpt_path', None):
            self.best_ckpt_path = osp.join(self.out_dir, osp.basename(self.best_ckpt_path))
        for key, path in list((getattr(self, 'best_ckpt_path_dict', None) or {}).items()):
            if path:
                self.best_ckpt_path_dict[key] = osp.join(self.out_dir, osp.basename(path))

    def save_now(self, runner, step: int) -> Optional[str]:
        """Save the checkpoint of ``step`` completed iterations unless it is already saved.

        Used when training stops early (a preemption signal). Returns the checkpoint path on the
        main process (None elsewhere).
        """
        if self.saved_step != step:
            self._save_checkpoint_with_step(runner, step, dict(epoch=runner.epoch, iter=step))
        return self.last_ckpt if is_main_process() else None

    def _remove_untracked_old_checkpoints(self) -> None:
        """Delete checkpoints older than the kept ones (a kill before their removal)."""
        kept = list(getattr(self, 'keep_ckpt_ids', []) or [])
        if self.max_keep_ckpts <= 0 or not kept or not osp.isdir(self.out_dir):
            return
        pattern = re.compile('^' + re.escape(self.filename_tmpl).replace(r'\{\}', r'(\d+)')
                             + '$')
        for name in os.listdir(self.out_dir):
            found = pattern.match(name)
            if found and int(found.group(1)) < min(kept):
                self._remove(int(found.group(1)))

    def _remove(self, step: int) -> None:
        path = osp.join(self.out_dir, self.filename_tmpl.format(step))
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Write the checkpoint, then ``last_checkpoint``, then remove outdated ones."""
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, ckpt_filename, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args,
                               **self.args)
        self.saved_step = step
        if not is_main_process():
            return
        write_last_checkpoint(runner.work_dir, self.last_ckpt)
        for old in outdated:
            self._remove(old)
