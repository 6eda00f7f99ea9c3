"""EMA teacher: the update rule, name pairing, shared frozen parts, dropout off, pseudo-labels."""
import copy

import pytest
import torch
from torch import nn

from mmseg.models.uda.ema_teacher import (EMATeacher, confidence_pseudo_label,
                                          frozen_module_prefixes)


class Net(nn.Module):
    """A frozen 'extractor' followed by a trainable head with BN and dropout."""

    def __init__(self):
        super().__init__()
        self.extractor = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1))
        self.extractor.requires_grad_(False)
        self.head = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.Dropout(0.5),
                                  nn.Conv2d(4, 3, 1))

    def forward(self, x):
        return self.head(self.extractor(x))

    def encode_decode(self, x, metas, generator=None):
        return self(x)


def make():
    torch.manual_seed(0)
    net = Net()
    return net, EMATeacher(net, alpha=0.99)


def perturb(module, scale=1.0):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def test_momentum_schedule():
    _, teacher = make()
    assert teacher.momentum(0) == 0.0
    assert teacher.momentum(1) == 0.5
    assert teacher.momentum(9) == pytest.approx(0.9)
    assert teacher.momentum(5000) == 0.99


def test_one_update_is_alpha_teacher_plus_one_minus_alpha_student():
    student, teacher = make()
    perturb(teacher)                     # teacher and student now differ
    perturb(student.head)
    before = {n: t.clone() for n, t in teacher.tensors().items()}
    alpha = teacher.update(student, iteration=1000)
    assert alpha == 0.99
    students = dict(student.named_parameters())
    for name, value in teacher.tensors().items():
        if name in students and students[name].requires_grad:
            expected = 0.99 * before[name] + 0.01 * students[name]
            assert torch.allclose(value, expected, atol=1e-7), name
    assert set(dict(teacher.ema_params.items_by_name())) == {
        n for n, p in student.named_parameters() if p.requires_grad}


def test_first_update_copies_the_student():
    student, teacher = make()
    perturb(student.head)
    teacher.update(student, iteration=0)
    for name, value in teacher.ema_params.items_by_name():
        assert torch.equal(value, dict(student.named_parameters())[name])


def test_update_pairs_by_name_and_refuses_a_changed_student():
    student, teacher = make()
    student.head[0].requires_grad_(False)
    with pytest.raises(AssertionError, match='trainable parameters of the student changed'):
        teacher.update(student, iteration=3)


def test_frozen_parts_are_shared_not_copied():
    student, teacher = make()
    assert frozen_module_prefixes(student) == ['extractor']
    ptrs = {p.data_ptr() for p in teacher.parameters()} | {b.data_ptr() for b in teacher.buffers()}
    assert not ptrs & {p.data_ptr() for p in student.extractor.parameters()}
    assert all(not p.requires_grad for p in teacher.parameters())
    assert 'head.1.running_mean' in teacher.tensors()          # BN statistics are its own


def test_teacher_forward_uses_its_weights_with_dropout_off():
    student, teacher = make()
    perturb(teacher)
    student.train()
    x = torch.randn(2, 3, 5, 5)
    stats_before = student.head[1].running_mean.clone()
    out1 = teacher.predict_logits(student, x, [])
    out2 = teacher.predict_logits(student, x, [])
    assert torch.equal(out1, out2)                             # no dropout noise
    assert torch.equal(student.head[1].running_mean, stats_before)  # student's BN untouched
    assert student.head[2].training                            # dropout back on for the student
    reference = copy.deepcopy(student)
    reference.load_state_dict(teacher.tensors(), strict=False)
    reference.head[2].eval()
    assert torch.equal(out1, reference(x))
    assert not torch.allclose(out1, student.eval()(x), atol=1e-3)


def test_pseudo_weight_is_the_fraction_of_confident_pixels():
    # Two classes: p(class 1) = sigmoid(z). z = 4 -> 0.982 >= 0.968; z = 3 -> 0.953 < 0.968.
    z = torch.tensor([[4.0, 3.0, -4.0, 0.0], [4.0, -3.5, 5.0, 1.0]])
    logits = torch.stack([torch.zeros_like(z), z])[None]      # (1, 2, 2, 4)
    label, weight = confidence_pseudo_label(logits, threshold=0.968)
    assert label.tolist() == [[[1, 1, 0, 0], [1, 0, 1, 1]]]
    # confident: 4, -4, 4, 5 (and -3.5 -> 0.971) = 5 of 8 pixels
    assert torch.allclose(weight, torch.full((1, 2, 4), 5 / 8))
    _, cropped = confidence_pseudo_label(torch.cat([logits] * 2), 0.968, ignore_top=1)
    assert cropped[:, 0].eq(0).all() and torch.allclose(cropped[:, 1], torch.tensor(5 / 8))
    _, cropped = confidence_pseudo_label(logits, 0.968, ignore_bottom=1)
    assert cropped[:, 1].eq(0).all() and torch.allclose(cropped[:, 0], torch.tensor(5 / 8))
