"""TrainableOptimWrapperConstructor: frozen params in no group, custom_keys honoured."""
import pytest
import torch.nn as nn

from mmseg.engine import TrainableOptimWrapperConstructor
from mmseg.engine.optimizers import match_custom_key


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.backbone[0].requires_grad_(False)  # the 'frozen SD' part
        self.decode_head = nn.Linear(4, 2)


def _build(paramwise_cfg=None, **optimizer):
    cfg = dict(optimizer=dict(type='AdamW', lr=6e-05, weight_decay=0.01, **optimizer),
               clip_grad=dict(max_norm=5, norm_type=2))
    return TrainableOptimWrapperConstructor(cfg, paramwise_cfg)


def test_groups_hold_only_trainable_params_with_head_lr_x10():
    net = _Net()
    wrapper = _build(dict(custom_keys=dict(head=dict(lr_mult=10.0))))(net)
    groups = wrapper.optimizer.param_groups
    grouped = {id(p) for g in groups for p in g['params']}
    assert all(id(p) not in grouped for p in net.backbone[0].parameters())
    assert {id(p) for p in net.backbone[1].parameters()} <= grouped
    by_key = {g['custom_key']: g for g in groups}
    assert by_key['head']['lr'] == pytest.approx(6e-04)
    assert by_key['']['lr'] == pytest.approx(6e-05)
    assert by_key['head']['weight_decay'] == pytest.approx(0.01)
    assert {id(p) for p in by_key['head']['params']} == {id(p) for p in
                                                         net.decode_head.parameters()}
    assert wrapper.clip_grad_kwargs == dict(max_norm=5, norm_type=2)


def test_without_paramwise_cfg_frozen_params_still_left_out():
    net = _Net()
    groups = _build()(net).optimizer.param_groups
    assert len(groups) == 1 and len(groups[0]['params']) == 4


def test_longest_key_wins_and_decay_mult():
    keys = dict(head=dict(lr_mult=10.0), decode_head=dict(lr_mult=2.0, decay_mult=0.0))
    assert match_custom_key('decode_head.conv.weight', keys) == 'decode_head'
    assert match_custom_key('aux_head.w', keys) == 'head'
    assert match_custom_key('backbone.w', keys) is None
    groups = _build(dict(custom_keys=keys))(_Net()).optimizer.param_groups
    head = [g for g in groups if g['custom_key'] == 'decode_head'][0]
    assert head['lr'] == pytest.approx(1.2e-04) and head['weight_decay'] == 0.0


def test_bad_config_is_one_clear_error():
    with pytest.raises(ValueError, match='bias_lr_mult'):
        _build(dict(bias_lr_mult=2.0))
    with pytest.raises(ValueError, match="custom_keys\\['head'\\].*lr_multt"):
        _build(dict(custom_keys=dict(head=dict(lr_multt=10.0))))
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match='nothing to optimise'):
        _build()(frozen)
