"""DACS augmentations: normalisation round trip, ClassMix masks, mixing, jitter and blur."""
import math

import pytest
import torch
from kornia.augmentation import ColorJitter
from kornia.filters import gaussian_blur2d

from mmseg.models.utils.dacs_transforms import (blur_kernel_size, color_jitter, denormalize,
                                                draw_blur_sigmas, gaussian_blur, get_class_masks,
                                                one_mix, renormalize)

MEAN = STD = [127.5] * 3


def test_denormalize_maps_unit_range_and_round_trips():
    images = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    assert torch.allclose(denormalize(images, MEAN, STD)[0, 0, 0], torch.tensor([0.0, 0.5, 1.0]))
    x = torch.rand(2, 3, 5, 5) * 2 - 1
    assert torch.allclose(renormalize(denormalize(x, MEAN, STD), MEAN, STD), x, atol=1e-6)


@pytest.mark.parametrize('num_classes', [1, 4, 5])
def test_class_masks_hold_exactly_the_sampled_classes(num_classes):
    labels = torch.arange(num_classes).repeat_interleave(6).view(1, 2, -1).repeat(2, 1, 1)
    labels[1] = labels[1].flip(-1)
    labels[1, 0, 0] = 255  # the ignore label counts as a class (release quirk)
    batch_classes = torch.unique(labels)
    masks = get_class_masks(labels, torch.Generator().manual_seed(3))
    replay = torch.Generator().manual_seed(3)
    chosen_count = math.ceil(batch_classes.numel() / 2)
    for label, mask in zip(labels, masks):
        expected = batch_classes[torch.randperm(batch_classes.numel(), generator=replay)
                                 [:chosen_count]]
        assert mask.shape == (1, ) + label.shape and mask.dtype == torch.float32
        assert torch.equal(mask[0].bool(), torch.isin(label, expected))
        pasted = set(label[mask[0] == 1].tolist())
        kept = set(label[mask[0] == 0].tolist())
        assert pasted <= set(expected.tolist()) and not kept & set(expected.tolist())


def test_one_mix_image_label_and_weight():
    mask = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    src_img, tgt_img = torch.full((3, 2, 2), 0.5), torch.full((3, 2, 2), -0.5)
    mixed = one_mix(mask, src_img, tgt_img)
    assert torch.equal(mixed[:, 0, 0], torch.full((3, ), 0.5))
    assert torch.equal(mixed[:, 0, 1], torch.full((3, ), -0.5))
    label = one_mix(mask, torch.tensor([[3, 255], [255, 7]]), torch.tensor([[1, 2], [4, 5]]))
    assert label.dtype == torch.int64 and label.tolist() == [[3, 2], [4, 7]]
    weight = one_mix(mask, torch.ones(2, 2), torch.full((2, 2), 0.25))
    assert weight.tolist() == [[1.0, 0.25], [0.25, 1.0]]


def test_color_jitter_applies_above_probability_with_kornia_strength():
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    assert color_jitter(images, 0.2, 0.2, 0.2, MEAN, STD) is images  # draw <= p: unchanged
    torch.manual_seed(5)
    out = color_jitter(images, 0.9, 0.2, 0.2, MEAN, STD)
    torch.manual_seed(5)
    expected = ColorJitter(0.2, 0.2, 0.2, 0.2)((images + 1) / 2) * 2 - 1
    assert torch.allclose(out, expected, atol=1e-4)  # (x+1)/2 vs (x*127.5+127.5)/255 rounding
    assert not torch.allclose(out, images, atol=1e-3)


def test_blur_kernel_is_a_tenth_forced_odd():
    assert blur_kernel_size(512) == 51
    assert blur_kernel_size(64) == 7
    assert blur_kernel_size(100) == 9
    assert blur_kernel_size(31) == 3


def test_gaussian_blur_threshold_sigma_and_kernel():
    images = torch.rand(2, 3, 64, 48)
    sigmas = torch.tensor([0.3, 1.0])
    assert gaussian_blur(images, 0.5, sigmas) is images  # draw <= 0.5: unchanged
    out = gaussian_blur(images, 0.7, sigmas)
    for i in range(2):
        sigma = torch.tensor([[sigmas[i], sigmas[i]]])
        expected = gaussian_blur2d(images[i:i + 1], (7, 5), sigma)
        assert torch.allclose(out[i:i + 1], expected, atol=1e-6)
    constant = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(gaussian_blur(constant, 1.0, sigmas[:1]), constant, atol=1e-6)


def test_blur_sigmas_lie_in_the_release_range():
    sigmas = draw_blur_sigmas(1000, torch.Generator().manual_seed(0))
    assert sigmas.min() >= 0.15 and sigmas.max() <= 1.15
    assert sigmas.max() - sigmas.min() > 0.9
