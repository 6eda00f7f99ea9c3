"""Training entry point shared by ``tools/train.py`` and ``run_experiments.py``."""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
import yaml
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmseg.engine import cpu_ddp_needed, cpu_model_wrapper_cfg, init_cpu_process_group
from mmseg.engine.checkpoint import load_checkpoint_safe
from mmseg.engine.resume import check_resume_config
from mmseg.engine.workdir import lock_work_dir, resolve_last_checkpoint
from mmseg.registry import RUNNERS
from mmseg.utils import atomic_write_text

from .config import default_work_dir, git_revision, unique_experiment_name
from .preflight import check_inputs


def prepare_train_config(cfg: Config,
                         work_dir: Optional[str] = None,
                         seed: Optional[int] = None,
                         deterministic: bool = False,
                         amp: bool = False,
                         resume: Optional[str] = None,
                         launcher: str = 'none') -> Config:
    """Apply the command-line choices to ``cfg`` (in place) and return it.

    Args:
        work_dir: Output folder; CLI > config > ``work_dirs/<config stem>``.
        seed: Overrides ``randomness.seed``.
        deterministic: Deterministic algorithms (exact CPU reproducibility).
        amp: Mixed precision of the trainable part (GPU only).
        resume: 'auto' (latest checkpoint of the work dir) or a checkpoint path.
        launcher: 'none', 'pytorch' or 'slurm'.
    """
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(cfg.filename or 'run')
    randomness = dict(cfg.get('randomness') or {})
    if seed is not None:
        randomness['seed'] = seed
        cfg.seed = seed
    if deterministic:
        randomness['deterministic'] = True
    cfg.randomness = randomness
    if amp:
        if not torch.cuda.is_available():
            raise RuntimeError('--amp needs a CUDA GPU (mmengine AmpOptimWrapper); on the CPU '
                               'DIFF already runs in float32 (diff_config.yaml dtype: auto)')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if resume is not None:
        cfg.resume = True
        cfg.load_from = None if resume == 'auto' else resume
    cfg.launcher = launcher
    if cpu_ddp_needed(launcher):
        cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(cfg.get('find_unused_parameters', False))
    cfg.setdefault('git_rev', git_revision())
    cfg.experiment_name = unique_experiment_name(cfg.filename)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """The config's runner (``runner_type``, default ``SafeRunner``)."""
    runner_cls = RUNNERS.get(cfg.get('runner_type', 'SafeRunner'))
    if runner_cls is None:
        raise KeyError(f'runner_type {cfg.runner_type!r} is not registered')
    return runner_cls.from_cfg(cfg)


def write_resolved_diff_config(runner: Runner) -> Optional[str]:
    """Write the DIFF backbone's resolved config (YAML + overrides) into the work dir."""
    if not is_main_process():
        return None
    model = getattr(runner.model, 'module', runner.model)
    for module in model.modules():
        config = getattr(getattr(module, 'encoder', None), 'config', None)
        if hasattr(config, 'to_dict'):
            path = osp.join(runner.work_dir, 'diff_config.resolved.yaml')
            atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
            return path
    return None


def last_val_metrics(runner: Runner) -> Dict[str, float]:
    """The most recent validation metrics (``cityscapes/mIoU``, ...)."""
    loop = getattr(runner, '_val_loop', None)
    if hasattr(loop, 'last_metrics') and loop.last_metrics:
        return dict(loop.last_metrics)
    return {key[len('val/'):]: float(buf.current())
            for key, buf in runner.message_hub.log_scalars.items() if key.startswith('val/')}


def prepare_resume(cfg: Config) -> List[str]:
    """For ``cfg.resume``: choose the checkpoint and compare its config with ``cfg``.

    The checkpoint is ``cfg.load_from`` or the work dir's own latest one
    (:func:`~mmseg.engine.workdir.resolve_last_checkpoint`); ``cfg.load_from`` is set to it.
    Only the checkpoint's ``meta`` is read (its tensors are mapped, not loaded).

    Returns:
        The lines to log (differences applied as given, notices).

    Raises:
        ResumeConfigError: a change the checkpoint's state would silently replace.
    """
    if not cfg.get('resume'):
        return []
    path = cfg.get('load_from') or resolve_last_checkpoint(cfg.work_dir)
    if path is None:
        return []
    saved = load_checkpoint_safe(path, mmap=True).get('meta', {}).get('cfg')
    lines = check_resume_config(saved, cfg.pretty_text, path) if isinstance(saved, str) else [
        f'--resume {path}: the checkpoint records no config to compare with']
    cfg.load_from = path
    return lines


def _is_first_process() -> bool:
    """Rank 0 of a distributed job (from the launcher's environment), or a single process."""
    return os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')) in ('', '0')


def train(cfg: Config, check: bool = True) -> Dict[str, float]:
    """Train as ``cfg`` says; return the last validation metrics.

    The work dir is locked first (one training per work dir, held by the first process of a
    distributed job). In a distributed run on CPU-only machines the gloo process group is
    created next (docs/pitfalls.md #12). A resume is checked against the checkpoint's
    config, and weights and data are checked, before the model is built.

    Raises:
        WorkDirBusyError: another live training holds the work dir.
        TrainingPreempted: SIGTERM/SIGUSR1 stopped training after saving a checkpoint.
    """
    lock = lock_work_dir(cfg.work_dir) if _is_first_process() else None
    own_group = False
    try:
        if cpu_ddp_needed(cfg.get('launcher', 'none')):
            own_group = not (dist.is_available() and dist.is_initialized())
            init_cpu_process_group(cfg.launcher)
        notes = prepare_resume(cfg)
        if check:
            check_inputs(cfg)
        runner = build_runner(cfg)
        for line in notes:
            runner.logger.info(line)
        write_resolved_diff_config(runner)
        runner.train()
        metrics = last_val_metrics(runner)
        print_log(f'work dir: {osp.abspath(cfg.work_dir)}', logger='current',
                  level=logging.INFO)
        return metrics
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()
        if lock is not None:
            lock.release()
