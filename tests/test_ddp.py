"""Two CPU processes (gloo) train the demo config through torchrun and tools/train.py."""
import os
import subprocess
import sys

import torch

from test_tools.workspace import DEMO, REPO, demo_options, make_workspace


def test_torchrun_two_cpu_processes(tmp_path, tiny_sd_dir, synthetic_data_root):
    workspace = make_workspace(tmp_path, synthetic_data_root)
    work_dir = workspace / 'ddp'
    env = dict(os.environ, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=str(REPO))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', str(29500 + os.getpid() % 1000), str(REPO / 'tools' / 'train.py'),
           str(DEMO), '--launcher', 'pytorch', '--work-dir', str(work_dir), '--cfg-options',
           *demo_options(tiny_sd_dir, iters=2)]
    result = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    # mmengine reports the world size as "GPU number", also for CPU processes
    assert 'GPU number: 2' in log and "type='MMDistributedDataParallel'" in log
    ckpt = torch.load(work_dir / 'iter_2.pth', weights_only=True)
    assert ckpt['meta']['iter'] == 2
