"""Experiment 90's model (MiT-B5 + DAFormer head) trains and evaluates through the same runner.

The tiny MiT folder is loaded through the real loading path; the data are the demo's synthetic
GTA source and its Cityscapes-, ACDC- and Dark-Zurich-like validation domains.
"""
import os

import torch
from mmengine.config import Config

from test_tools.workspace import DEMO, REPO
from tools.make_tiny_mit import make_tiny_mit
from tools.train import main as train_main

EXP90 = REPO / 'configs/baselines/daformer_mitb5_srconly-40k_gta2five-512x512.py'


def _baseline_on_synthetic_data(mit_dir, iters: int) -> Config:
    """The demo's data, loops and hooks with exp 90's model and optimiser (tiny widths)."""
    cfg, exp90 = Config.fromfile(str(DEMO)), Config.fromfile(str(EXP90))
    cfg.model = exp90.model
    cfg.model.backbone.pretrained = str(mit_dir)
    cfg.model.decode_head.update(in_channels=[8, 16, 40, 64], channels=32,
                                 decoder_params=dict(embed_dims=32, fusion_cfg=dict(
                                     dilations=(1, 6, 12, 18), sep=True)))
    cfg.optim_wrapper = exp90.optim_wrapper
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = 1
    cfg.val_dataloader.dataset.indices = 2
    for domain in cfg.val_cfg.extra_domains.values():
        domain.dataset.indices = 2
    return cfg


def test_mitb5_baseline_trains_and_evaluates_on_every_domain(workspace, tmp_path):
    mit_dir = make_tiny_mit(tmp_path / 'tiny-mit', seed=0)
    cfg = _baseline_on_synthetic_data(mit_dir, iters=2)
    path = tmp_path / 'mit_baseline.py'
    cfg.dump(str(path))
    work_dir = workspace / 'work_dirs' / 'mit2'
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        metrics = train_main([str(path), '--work-dir', str(work_dir)])
    finally:
        os.chdir(cwd)
    for domain in ('cityscapes', 'acdc', 'dark_zurich'):
        assert 0.0 <= metrics[f'{domain}/mIoU'] <= 100.0, metrics
    ckpt = torch.load(work_dir / 'iter_2.pth', weights_only=True)
    state = ckpt['state_dict']
    from transformers import SegformerForImageClassification
    start = SegformerForImageClassification.from_pretrained(str(mit_dir)).segformer.state_dict()
    encoder = {k[len('backbone.encoder.'):]: v for k, v in state.items()
               if k.startswith('backbone.encoder.')}
    assert encoder.keys() == start.keys()
    assert any(not torch.equal(encoder[k], start[k]) for k in start)  # the encoder trained
    # DAFormer's groups: head at 10x the lr; every LayerNorm of the encoder without decay.
    groups = ckpt['optimizer']['param_groups']
    base_lr = min(g['lr'] for g in groups)
    assert {round(g['lr'] / base_lr) for g in groups} == {1, 10}
    assert any(g['weight_decay'] == 0.0 for g in groups)
