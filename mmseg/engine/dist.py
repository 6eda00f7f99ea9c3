"""Distributed start-up that also works on CPU-only machines.

mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device``
unconditionally and cannot start without a GPU (docs/pitfalls.md #12).
On such machines the process group is created here, with gloo, before the
Runner is built (the Runner then skips its own initialisation), and the model
wrapper is told not to pin a device.
"""
import os
from typing import Optional

import torch
import torch.distributed as dist


def cpu_ddp_needed(launcher: str) -> bool:
    """True when ``launcher`` asks for distributed training and no GPU exists."""
    return launcher != 'none' and not torch.cuda.is_available()


def init_cpu_process_group(launcher: str, timeout_s: Optional[int] = None) -> None:
    """Initialise a gloo process group from the launcher's environment.

    Args:
        launcher (str): 'pytorch' (torchrun sets RANK, WORLD_SIZE,
            MASTER_ADDR, MASTER_PORT) or 'slurm' (SLURM_PROCID, SLURM_NTASKS;
            MASTER_ADDR/MASTER_PORT must be exported).
        timeout_s (int, optional): Collective timeout in seconds.

    Raises:
        RuntimeError: a needed environment variable is missing.
    """
    if dist.is_available() and dist.is_initialized():
        return
    if launcher == 'slurm':
        os.environ.setdefault('RANK', os.environ.get('SLURM_PROCID', ''))
        os.environ.setdefault('WORLD_SIZE', os.environ.get('SLURM_NTASKS', ''))
        os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if not os.environ.get(k)]
    if missing:
        raise RuntimeError(f'--launcher {launcher}: environment variables {missing} are not set '
                           '(start with `torchrun --nproc_per_node N tools/train.py ...`)')
    kwargs = {}
    if timeout_s is not None:
        import datetime
        kwargs['timeout'] = datetime.timedelta(seconds=timeout_s)
    dist.init_process_group(backend='gloo', **kwargs)


def cpu_model_wrapper_cfg(find_unused_parameters: bool = False) -> dict:
    """The DDP wrapper config for CPU processes (no ``device_ids``)."""
    return dict(type='MMDistributedDataParallel', device_ids=None,
                broadcast_buffers=False, find_unused_parameters=find_unused_parameters)
