"""Cross-entropy with ignored pixels, both reductions, against hand-computed values."""
import math

import pytest
import torch

from mmseg.models.losses import CrossEntropyLoss, accuracy, cross_entropy
from mmseg.registry import MODELS

# One image, 2 classes, 2x2 pixels. Labels: [[0, 1], [255, 1]].
LOGITS = torch.tensor([[[[2.0, 0.0], [5.0, 1.0]],
                        [[0.0, 1.0], [-5.0, 3.0]]]])
LABEL = torch.tensor([[[0, 1], [255, 1]]])


def _hand_losses():
    # -log softmax of the true class per valid pixel.
    p00 = -math.log(math.exp(2) / (math.exp(2) + 1))  # class 0, logits (2, 0)
    p01 = -math.log(math.e / (1 + math.e))  # class 1, logits (0, 1)
    p11 = -math.log(math.exp(3) / (math.e + math.exp(3)))  # class 1, logits (1, 3)
    return p00, p01, p11


def test_released_reduction_divides_by_all_pixels():
    p00, p01, p11 = _hand_losses()
    loss = cross_entropy(LOGITS, LABEL, avg_non_ignore=False)
    assert loss.item() == pytest.approx((p00 + p01 + p11) / 4, abs=1e-6)


def test_valid_pixel_reduction_divides_by_valid_pixels():
    p00, p01, p11 = _hand_losses()
    loss = cross_entropy(LOGITS, LABEL, avg_non_ignore=True)
    assert loss.item() == pytest.approx((p00 + p01 + p11) / 3, abs=1e-6)


def test_pixel_weight_and_loss_weight():
    p00, p01, p11 = _hand_losses()
    weight = torch.tensor([[[0.5, 2.0], [7.0, 0.0]]])
    module = MODELS.build(dict(type='CrossEntropyLoss', loss_weight=3.0, avg_non_ignore=False))
    loss = module(LOGITS, LABEL, weight=weight)
    assert loss.item() == pytest.approx(3.0 * (0.5 * p00 + 2.0 * p01) / 4, abs=1e-6)
    module = CrossEntropyLoss(avg_non_ignore=True)
    assert module(LOGITS, LABEL, weight=weight).item() == pytest.approx(
        (0.5 * p00 + 2.0 * p01) / 3, abs=1e-6)


def test_all_ignored_gives_zero_with_gradient():
    logits = LOGITS.clone().requires_grad_(True)
    label = torch.full_like(LABEL, 255)
    for avg in (False, True):
        loss = cross_entropy(logits, label, avg_non_ignore=avg)
        assert loss.item() == 0.0
        loss.backward()


def test_label_with_channel_dim_and_shape_errors():
    assert cross_entropy(LOGITS, LABEL[:, None]).item() == pytest.approx(
        cross_entropy(LOGITS, LABEL).item())
    with pytest.raises(ValueError, match='label shape'):
        cross_entropy(LOGITS, LABEL[:, :1])
    with pytest.raises(ValueError, match='softmax'):
        CrossEntropyLoss(use_sigmoid=True)


def test_accuracy_ignores_ignored_pixels():
    # argmax per pixel: (0, 1 | 0, 1); valid labels (0, 1 | -, 1) -> 3/3 correct.
    assert accuracy(LOGITS, LABEL).item() == pytest.approx(100.0)
    label = torch.tensor([[[1, 1], [255, 0]]])  # 1 of 3 correct
    assert accuracy(LOGITS, label).item() == pytest.approx(100.0 / 3)
    assert accuracy(LOGITS, torch.full_like(LABEL, 255)).item() == 0.0
