"""Safe, atomic checkpoints; exact resume; loud failure on foreign weights."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer

from mmseg.engine import CheckpointMismatchError, load_state_dict_strict
from mmseg.engine.checkpoint import restore_message_hub_state, strip_prefix, to_plain


def test_to_plain_round_trip_of_message_hub_state():
    buf = HistoryBuffer([1.5, np.float64(2.5)], [1, 2], max_length=10)
    state = dict(log_scalars={'train/loss': buf},
                 runtime_info=dict(iter=np.int64(3), arr=np.arange(3), meta=('a', 'b'),
                                   bad=object()),
                 resumed_keys={'train/loss': True})
    plain = to_plain(state)
    assert 'bad' not in plain['runtime_info']
    assert plain['runtime_info']['iter'] == 3 and type(plain['runtime_info']['iter']) is int
    restored = restore_message_hub_state(plain)
    log, count = restored['log_scalars']['train/loss'].data
    np.testing.assert_array_equal(log, [1.5, 2.5])
    np.testing.assert_array_equal(count, [1, 2])


def test_strip_prefix_is_anchored():
    sd = {'model.backbone.diff_model.w': torch.zeros(1), 'ema_model.x': torch.zeros(1)}
    kept, rest = strip_prefix(sd, 'model.')
    assert list(kept) == ['backbone.diff_model.w'] and list(rest) == ['ema_model.x']


def test_foreign_weights_fail_listing_missing_and_unexpected():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3))
    other = nn.Sequential(nn.Linear(2, 2), nn.Conv2d(2, 3, 1), nn.Linear(3, 1))
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(model, other.state_dict(), source='other.pth')
    text = str(info.value)
    assert 'other.pth' in text and 'unexpected keys (2): 2.bias, 2.weight' in text
    assert 'shape mismatches' in text and '1.weight' in text
    with pytest.raises(CheckpointMismatchError, match=r'missing keys \(2\): 1.bias, 1.weight'):
        load_state_dict_strict(model, {k: v for k, v in model.state_dict().items()
                                       if k.startswith('0.')})
    # an anchored 'module.' prefix is stripped; everything else must match
    load_state_dict_strict(model, {f'module.{k}': v for k, v in model.state_dict().items()})


def _weights(runner):
    return {k: v.clone() for k, v in runner.bare_model.state_dict().items()}


def test_checkpoint_is_safe_atomic_and_trainable_only(tmp_path, make_toy_runner):
    runner = make_toy_runner(tmp_path / 'a', max_iters=2)
    runner.train()
    path = tmp_path / 'a' / 'iter_2.pth'
    ckpt = torch.load(path, weights_only=True)  # would raise on pickled objects
    assert set(ckpt) == {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers',
                         'rng_state'}
    assert not any(k.startswith('backbone.') for k in ckpt['state_dict'])
    assert ckpt['meta']['iter'] == 2 and ckpt['meta']['seed'] == 0
    assert not [p for p in (tmp_path / 'a').iterdir() if '.tmp' in p.name]
    assert (tmp_path / 'a' / 'last_checkpoint').read_text().strip().endswith('iter_2.pth')


def test_resume_continues_exactly(tmp_path, make_toy_runner):
    full = make_toy_runner(tmp_path / 'full', max_iters=4)
    full.train()
    expected = _weights(full)
    first = make_toy_runner(tmp_path / 'half', max_iters=2)
    first.train()
    assert not all(torch.equal(expected[k], v) for k, v in _weights(first).items())
    second = make_toy_runner(tmp_path / 'half', max_iters=4, resume=True,
                             load_from=str(tmp_path / 'half' / 'iter_2.pth'))
    second.train()
    resumed = _weights(second)
    assert resumed.keys() == expected.keys()
    for key in expected:
        assert torch.equal(resumed[key], expected[key]), key
    assert second.optim_wrapper.get_lr() == full.optim_wrapper.get_lr()
