"""The poly10warm schedule equals mmcv's hand formula (docs/method.md §2.6)."""
import pytest
import torch
from mmengine.config import Config

from mmseg.registry import PARAM_SCHEDULERS

BASE = 6e-05


def mmcv_lr(it: int, base: float = BASE) -> float:
    """mmcv: poly (power 1, min 0) over 40k, times linear warm-up (1500 it, ratio 1e-6)."""
    lr = base * (1 - it / 40000)
    if it < 1500:
        lr *= 1 - (1 - it / 1500) * (1 - 1e-06)
    return lr


def test_poly10warm_matches_mmcv_formula(repo_root):
    cfg = Config.fromfile(str(repo_root / 'configs/_base_/schedules/poly10warm.py'))
    adamw = Config.fromfile(str(repo_root / 'configs/_base_/schedules/adamw.py'))
    assert adamw.optim_wrapper.optimizer.lr == BASE
    assert cfg.train_cfg.max_iters == 40000 and cfg.train_cfg.val_interval == 4000
    param = torch.nn.Parameter(torch.zeros(1))
    # two groups: base lr and the head's 10x
    opt = torch.optim.AdamW([dict(params=[param], lr=BASE),
                             dict(params=[torch.nn.Parameter(torch.zeros(1))], lr=10 * BASE)])
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=opt)) for s in cfg.param_scheduler]
    checks = {0, 1, 2, 100, 750, 1499, 1500, 1501, 4000, 20000, 39990, 39999}
    seen = set()
    for it in range(40000):
        if it in checks:
            for group, base in zip(opt.param_groups, (BASE, 10 * BASE)):
                assert group['lr'] == pytest.approx(mmcv_lr(it, base), rel=1e-9, abs=1e-20), it
            seen.add(it)
        for s in schedulers:
            s.step()
    assert seen == checks
    assert opt.param_groups[0]['lr'] == pytest.approx(0.0, abs=1e-20)
