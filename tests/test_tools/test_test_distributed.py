"""tools/test.py --launcher pytorch: two CPU processes (gloo) give the metrics of one process.

Three Cityscapes images (odd), so the sampler pads one rank with a repeated image; mmengine's
result collection must drop it. The two processes also evaluate in batches of 2.
"""
import json
import os
import subprocess
import sys

import pytest
import torch

from mmseg.apis import init_model
from test_tools.workspace import DEMO, REPO, SHORT_TIMESTEPS
from tools.test import main as evaluate_main

# One domain, three images (odd: one rank gets a padded repeat).
DOMAIN = ['--domains', 'cityscapes']
SUBSET = ['test_dataloader.dataset.indices=3']


def test_two_processes_give_the_metrics_of_one(workspace, tiny_sd_dir, tmp_path):
    options = [f'model.backbone.overrides.model_id={tiny_sd_dir}', *SHORT_TIMESTEPS]
    model = init_model(DEMO, cfg_options=dict(o.split('=', 1) for o in options[:1]))
    checkpoint = tmp_path / 'random.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)

    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        single = evaluate_main([str(DEMO), str(checkpoint), '--work-dir', str(tmp_path / 'one'),
                                *DOMAIN, '--cfg-options', *options, *SUBSET])
    finally:
        os.chdir(cwd)

    work_dir = tmp_path / 'two'
    env = dict(os.environ, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=str(REPO))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', str(30500 + os.getpid() % 1000), str(REPO / 'tools' / 'test.py'),
           str(DEMO), str(checkpoint), '--launcher', 'pytorch', '--batch-size', '2',
           '--work-dir', str(work_dir), *DOMAIN, '--cfg-options', *options, *SUBSET]
    result = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Distributed launcher: pytorch' in log and 'GPU number: 2' in log

    metrics = json.loads((work_dir / 'test_metrics.json').read_text())['metrics']
    assert 'cityscapes/mIoU' in metrics
    assert set(metrics) == set(single)
    for key, value in single.items():
        # batched convolutions may move a logit in the last float bits: a pixel at a tie
        if value != value:  # NaN (class absent) stays null
            assert metrics[key] is None, key
        else:
            assert metrics[key] == pytest.approx(value, abs=0.05), key
