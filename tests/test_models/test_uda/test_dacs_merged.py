"""DACS with the DIFF backbone: the source passes and the teacher's target pass share their
UNet calls (34 per iteration with the released schedule), then the mixed pass makes 34.

The call count uses the DACS experiment config with the tiny SD model; the equivalences use
a short schedule and narrow widths, every trajectory's noise from its own seeded generators
(tests/test_models/diff_merged_helpers.py), and compare with the separate extractions of the
extractor run one trajectory at a time.
"""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper

from tests.test_models.diff_merged_helpers import (DACS, SeededTrajectories, UNetRows,
                                                   assert_close_to_magnitude,
                                                   assert_same_gradients, build_from_config,
                                                   extract_separately, uda_data, unet_of)


class GradientsAtStep(OptimWrapper):
    """SGD that keeps a copy of the gradients it steps with."""

    def __init__(self, model):
        super().__init__(torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                         lr=0.1))
        self.model, self.grads = model, None

    def step(self, **kwargs):
        self.grads = {n: p.grad.clone() for n, p in self.model.named_parameters()
                      if p.grad is not None}
        super().step(**kwargs)


def test_dacs_iteration_makes_68_calls(tiny_sd_dir):
    """One source image with k = 1 prompted class: 34 calls of (2 + k) B + B = 4 rows (steered,
    label-free and the teacher's target rows), then 34 calls of B = 1 row (mixed images)."""
    model = build_from_config(DACS, tiny_sd_dir, small=True)  # released schedule
    counter = UNetRows(unet_of(model))
    model.train_step(uda_data(1, 1), GradientsAtStep(model))
    counter.remove()
    assert counter.rows == [4] * 34 + [1] * 34


def _run(model, data, path, separately=False):
    """One DACS iteration by ``path``; returns log vars, pseudo-labels, gradients, calls."""
    SeededTrajectories(model.model.backbone.encoder.extractor)
    if separately:
        extract_separately(model.model.backbone.encoder.extractor)
    counter, pseudo = UNetRows(unet_of(model)), []
    label_of = model._pseudo_label

    def recorded(*args, **kwargs):
        pseudo.append(label_of(*args, **kwargs))
        return pseudo[-1]

    model._pseudo_label = recorded
    torch.manual_seed(7)  # dropout, ClassMix, jitter and blur draws
    if path == 'train_step':
        optim = GradientsAtStep(model)
        log_vars, grads = model.train_step(data, optim), optim.grads
    else:  # the DDP path: one backward of all losses
        losses = model(**model.data_preprocessor(data, True), mode='loss')
        total, log_vars = model.parse_losses(losses)
        total.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    counter.remove()
    return log_vars, pseudo[0], grads, len(counter.rows)


@pytest.mark.parametrize('path, batch, k', [('train_step', 2, 3), ('loss', 1, 1)])
def test_merged_iteration_equals_separate_extractions(tiny_sd_dir, path, batch, k):
    merged_model = build_from_config(DACS, tiny_sd_dir, small=True, short=True)
    separate_model = copy.deepcopy(merged_model)
    data = uda_data(batch, k)
    merged = _run(merged_model, data, path)
    separate = _run(separate_model, data, path, separately=True)
    assert merged[3] == 5 + 5 and separate[3] == 4 * 5  # 5 UNet calls per trajectory
    assert merged[0].keys() == separate[0].keys()
    for name, value in merged[0].items():
        assert_close_to_magnitude(value, separate[0][name], name)
    assert torch.equal(merged[1][0], separate[1][0])  # pseudo-labels
    assert_close_to_magnitude(merged[1][1], separate[1][1], 'pseudo weight')
    assert_same_gradients(merged[2], separate[2])


def test_source_only_is_unchanged(tiny_sd_dir):
    model = build_from_config(DACS, tiny_sd_dir, small=True, short=True)
    model.source_only, model.teacher = True, None
    counter = UNetRows(unet_of(model))
    model.train_step(uda_data(1, 1), GradientsAtStep(model))
    counter.remove()
    assert counter.rows == [3] * 5  # IPKL's two passes merged, no target pass
