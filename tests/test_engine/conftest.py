"""A toy model, dataset and metric for engine tests (CPU, milliseconds per iteration).

The toy model has a frozen ``backbone`` (left out of ``state_dict`` like the
DIFF backbone's Stable Diffusion weights) and a trainable ``decode_head``.
"""
import itertools
import os
from typing import Callable

import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from mmseg.registry import METRICS

_counter = itertools.count()


class ToyModel(BaseModel):
    """Frozen linear 'backbone' + trainable 'decode_head' on 8-d inputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Linear(8, 8)
        self.backbone.requires_grad_(False)
        self.neck = nn.Linear(8, 8)
        self.decode_head = nn.Linear(8, 2)
        # like DIFF: frozen weights are not part of the checkpoint
        self._register_state_dict_hook(self._drop_frozen)

    @staticmethod
    def _drop_frozen(module, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if k.startswith(prefix + 'backbone.')]:
            del state_dict[key]
        return state_dict

    def forward(self, inputs, target=None, mode='tensor'):
        x = torch.stack(inputs)
        out = self.decode_head(torch.relu(self.neck(self.backbone(x))))
        if mode == 'loss':
            y = torch.stack(target)
            # dropout-free but random: the noise tests that RNG state is resumed
            noise = 0.01 * torch.randn_like(out)
            return dict(loss=((out + noise - y)**2).mean())
        if mode == 'predict':
            return [dict(pred=o.detach(), target=t) for o, t in zip(out, target)]
        return out


class ToyDataset(Dataset):
    """``n`` random (input, target) pairs, fixed by ``seed``."""

    metainfo = dict(classes=('a', 'b'))

    def __init__(self, n: int = 16, seed: int = 0, shift: float = 0.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 8, generator=g)
        self.y = torch.randn(n, 2, generator=g) + shift

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], target=self.y[i])


@METRICS.register_module(force=True)
class ToyErrorMetric(BaseMetric):
    """Mean absolute error, reported as 'mae'."""

    def process(self, data_batch, data_samples) -> None:
        for s in data_samples:
            self.results.append(float((s['pred'] - s['target']).abs().mean()))

    def compute_metrics(self, results) -> dict:
        return dict(mae=sum(results) / len(results))


def toy_cfg(work_dir, max_iters: int = 4, **extra) -> dict:
    """Keyword arguments for SafeRunner with the toy parts (iteration-based)."""
    loader = dict(dataset=ToyDataset(), sampler=dict(type='InfiniteSampler', shuffle=True),
                  batch_size=2, num_workers=0)
    cfg = dict(
        model=ToyModel(), work_dir=str(work_dir),
        experiment_name=f'toy_{os.getpid()}_{next(_counter)}',
        train_dataloader=loader,
        train_cfg=dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(constructor='TrainableOptimWrapperConstructor',
                           optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.01),
                           paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=10.0))),
                           clip_grad=dict(max_norm=5, norm_type=2)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3),
                         dict(type='PolyLR', power=1.0, by_epoch=False, begin=0, end=9)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2,
                                           max_keep_ckpts=-1),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmseg',
    )
    cfg.update(extra)
    return cfg


@pytest.fixture
def make_toy_runner() -> Callable:
    from mmseg.engine import SafeRunner

    def make(work_dir, **kwargs):
        return SafeRunner(**toy_cfg(work_dir, **kwargs))

    return make
