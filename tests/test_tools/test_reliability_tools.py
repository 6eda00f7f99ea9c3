"""Issue 9 with the tools: evaluation wherever the data lies; NaN checkpoints refused."""
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from mmseg.engine.checkpoint import NonFiniteWeightsError, load_checkpoint_safe
from test_tools.workspace import DEMO, SHORT_TIMESTEPS
from tools.test import main as evaluate_main


def _evaluate(cwd, ckpt, out, tiny_sd_dir, *options):
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        return evaluate_main([str(DEMO), str(ckpt), '--domains', 'cityscapes', '--out', str(out),
                              '--work-dir', str(out.parent / f'{out.name}_wd'), '--cfg-options',
                              f'model.backbone.overrides.model_id={tiny_sd_dir}',
                              *SHORT_TIMESTEPS, 'test_dataloader.dataset.indices=2', *options])
    finally:
        os.chdir(previous)


def _plain(metrics):
    return {k: None if np.isnan(v) else v for k, v in metrics.items()}  # NaN != NaN


def test_same_predictions_and_miou_wherever_the_data_lies(workspace, trained_demo, tiny_sd_dir,
                                                          synthetic_data_root, tmp_path):
    _, ckpt, _ = trained_demo
    moved = tmp_path / 'elsewhere' / 'copy of data'
    shutil.copytree(synthetic_data_root / 'cityscapes', moved / 'cityscapes')
    # relative data_root (the config's data/synthetic/cityscapes/, from the workspace) ...
    first = _evaluate(workspace, ckpt, tmp_path / 'a', tiny_sd_dir)
    # ... and an absolute one to a moved copy, from another working directory
    second = _evaluate(tmp_path, ckpt, tmp_path / 'b', tiny_sd_dir,
                       f'test_dataloader.dataset.data_root={moved / "cityscapes"}/')
    assert _plain(first) == _plain(second)
    labels_a = sorted((tmp_path / 'a').rglob('*.png'))
    labels_b = sorted((tmp_path / 'b').rglob('*.png'))
    assert [p.name for p in labels_a] == [p.name for p in labels_b] and labels_a
    for a, b in zip(labels_a, labels_b):
        np.testing.assert_array_equal(cv2.imread(str(a), cv2.IMREAD_UNCHANGED),
                                      cv2.imread(str(b), cv2.IMREAD_UNCHANGED))


def test_checkpoint_with_nan_weights_is_refused(workspace, trained_demo, tiny_sd_dir, tmp_path):
    _, ckpt, _ = trained_demo
    checkpoint = load_checkpoint_safe(ckpt)
    name = sorted(checkpoint['state_dict'])[0]
    checkpoint['state_dict'][name] = torch.full_like(checkpoint['state_dict'][name], float('nan'))
    bad = tmp_path / 'nan.pth'
    torch.save(checkpoint, bad)
    with pytest.raises(NonFiniteWeightsError, match=name.replace('.', r'\.')):
        _evaluate(workspace, bad, tmp_path / 'c', tiny_sd_dir)


def test_trained_checkpoint_records_its_frozen_model(trained_demo, tiny_sd_dir):
    _, ckpt, _ = trained_demo
    [record] = load_checkpoint_safe(ckpt)['meta']['stable_diffusion']
    assert os.path.realpath(record['model_id']) == os.path.realpath(tiny_sd_dir)
    assert len(record['fingerprint']['sha256']) == 64
