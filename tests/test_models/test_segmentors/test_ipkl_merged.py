"""IPKL with the DIFF backbone: both passes share one UNet call per inversion step.

The call counts use experiment 50's config (released schedule: 34 calls) with the tiny SD
model; the equivalences use a short schedule and narrow widths, with every trajectory's noise
from its own seeded generators (tests/test_models/diff_merged_helpers.py).
"""
import pytest
import torch

from tests.test_models.diff_merged_helpers import (EXP50, SeededTrajectories, UNetRows,
                                                   assert_close_to_magnitude, assert_same_gradients,
                                                   build_from_config, extract_separately,
                                                   ipkl_batch, unet_of)


def test_exp50_training_step_makes_34_calls_of_3_rows(tiny_sd_dir):
    """One image with k = 1 prompted class: (2 + k) B = 3 rows in each of 34 calls."""
    model = build_from_config(EXP50, tiny_sd_dir)
    counter = UNetRows(unet_of(model))
    losses = model.loss(*ipkl_batch(1, 1))
    counter.remove()
    assert counter.rows == [3] * 34
    assert model.backbone.last_usage.calls == 34
    assert model.backbone.last_usage.rows == (3, ) * 34
    assert {'decode_w_seg.loss_seg', 'decode_wo_seg.loss_seg', 'consistency_loss'} <= set(losses)


def _step(model, inputs, samples):
    """Losses and trainable gradients of one IPKL step (dropout drawn from seed 3)."""
    model.zero_grad()
    torch.manual_seed(3)
    losses = model.loss(inputs, samples)
    total, _ = model.parse_losses(losses)
    total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


@pytest.mark.parametrize('batch, k', [(1, 0), (1, 1), (2, 3)])
def test_merged_step_equals_separate_passes(tiny_sd_dir, batch, k):
    model = build_from_config(EXP50, tiny_sd_dir, small=True, short=True)
    inputs, samples = ipkl_batch(batch, k)
    SeededTrajectories(model.backbone.encoder.extractor)
    counter = UNetRows(unet_of(model))
    merged = _step(model, inputs, samples)
    merged_calls = len(counter.rows)
    SeededTrajectories(model.backbone.encoder.extractor)  # restart the seeds at 0
    extract_separately(model.backbone.encoder.extractor)  # one extraction per trajectory
    separate = _step(model, inputs, samples)
    counter.remove()
    assert merged_calls == 5 and len(counter.rows) == 5 + 2 * 5
    assert merged[0].keys() == separate[0].keys()
    for name, value in merged[0].items():
        assert_close_to_magnitude(value, separate[0][name], name)
    assert_same_gradients(merged[1], separate[1])


def test_backbone_passes_are_checked(tiny_sd_dir):
    model = build_from_config(EXP50, tiny_sd_dir, small=True, short=True)
    with pytest.raises(ValueError, match='expected Trajectory objects, got dict'):
        model.backbone.extract([dict(images=torch.zeros(1, 3, 64, 64))])
