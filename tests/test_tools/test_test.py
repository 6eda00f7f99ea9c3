"""tools/test.py: metrics per domain, coloured predictions, raw labels, strict loading."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from mmseg.engine import CheckpointMismatchError
from test_tools.workspace import DEMO, SHORT_TIMESTEPS
from tools.test import main as evaluate_main


def _run(workspace, argv):
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        return evaluate_main(argv)
    finally:
        os.chdir(cwd)


def _options(tiny_sd_dir):
    return ['--cfg-options', f'model.backbone.overrides.model_id={tiny_sd_dir}', *SHORT_TIMESTEPS,
            'test_dataloader.dataset.indices=2', 'test_cfg.extra_domains.acdc.dataset.indices=1',
            'test_cfg.extra_domains.dark_zurich.dataset.indices=1']


def test_eval_show_dir_and_out(workspace, trained_demo, tiny_sd_dir, tmp_path):
    _, ckpt, _ = trained_demo
    show, out, wd = tmp_path / 'show', tmp_path / 'labels', tmp_path / 'wd'
    metrics = _run(workspace, [str(DEMO), str(ckpt), '--eval', 'mIoU', '--show-dir', str(show),
                               '--out', str(out), '--work-dir', str(wd), *_options(tiny_sd_dir)])
    assert {'cityscapes/mIoU', 'acdc/mIoU', 'dark_zurich/mIoU'} <= set(metrics)
    saved = json.loads((wd / 'test_metrics.json').read_text())['metrics']
    assert saved == {k: None if np.isnan(v) else v for k, v in metrics.items()}
    assert sorted(p.name for p in show.iterdir()) == ['acdc', 'cityscapes', 'dark_zurich']
    # one figure per image (2 Cityscapes images), written once: the demo config's own
    # prediction hook is replaced by the --show-dir one, not run besides it
    assert len(list((show / 'cityscapes').iterdir())) == 2
    assert not (wd / 'predictions').exists()
    labels = sorted((out / 'cityscapes').iterdir())
    assert len(labels) == 2
    label = cv2.imread(str(labels[0]), cv2.IMREAD_UNCHANGED)
    assert label.ndim == 2 and label.shape == (128, 256) and label.max() < 19


def test_checkpoint_of_another_model_fails_listing_keys(workspace, tiny_sd_dir, tmp_path):
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'classifier.weight': torch.zeros(2, 2)}}, other)
    with pytest.raises(CheckpointMismatchError,
                       match=r'(?s)missing keys \(\d+\): backbone\..*unexpected keys \(1\): '
                             r'classifier\.weight'):
        _run(workspace, [str(DEMO), str(other), '--work-dir', str(tmp_path),
                         *_options(tiny_sd_dir)])


def test_pickled_objects_are_refused(workspace, tiny_sd_dir, tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'meta': {'obj': np.float64(1.0).__class__}}, bad)
    with pytest.raises(RuntimeError, match='cannot load .* safely'):
        _run(workspace, [str(DEMO), str(bad), '--work-dir', str(tmp_path),
                         *_options(tiny_sd_dir)])
