"""Training entry point shared by ``tools/train.py`` and ``run_experiments.py``."""
import logging
import os.path as osp
from typing import Dict, Optional

import torch
import torch.distributed as dist
import yaml
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmseg.engine import cpu_ddp_needed, cpu_model_wrapper_cfg, init_cpu_process_group
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


def train(cfg: Config, check: bool = True) -> Dict[str, float]:
    """Train as ``cfg`` says; return the last validation metrics.

    In a distributed run on CPU-only machines the gloo process group is
    created first (docs/pitfalls.md #12). Weights and data are checked
    before the model is built.
    """
    own_group = False
    if cpu_ddp_needed(cfg.get('launcher', 'none')):
        own_group = not (dist.is_available() and dist.is_initialized())
        init_cpu_process_group(cfg.launcher)
    try:
        if check:
            check_inputs(cfg)
        runner = build_runner(cfg)
        write_resolved_diff_config(runner)
        runner.train()
        metrics = last_val_metrics(runner)
        print_log(f'work dir: {osp.abspath(cfg.work_dir)}', logger='current',
                  level=logging.INFO)
        return metrics
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()
