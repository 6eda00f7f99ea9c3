"""The extractor against the package's literal implementation of the release's algorithm.

The reference (``diff.reference.release_features``) follows docs/method.md §1.3-1.9 step by
step: a VAE sample, the ascending inversion over every timestep with (2 + k) B conditioning
rows, classifier-free guidance, one update per branch with its own noise, per-pixel averaging
inside the nearest-downsampled masks, ResNet features from the unconditional rows and
transformer features summed over all rows, laid out per level as [ResNet j0..j2 | transformer
j0..j2], each over the saved steps in list order. Noise is drawn in the order the package
documents (per step, per image, per branch).
"""
import pytest
import torch
from diff_helpers import (SHORT, assert_close_to_magnitude, build_encoder, diff, generators,
                          images, label_map)


@pytest.mark.parametrize('with_labels, unet_output', [(False, 'epsilon'), (True, 'epsilon'),
                                                      (True, 'auto')])
def test_extractor_equals_the_literal_release_algorithm(tiny_sd_dir, components, with_labels,
                                                        unet_output):
    encoder = build_encoder(tiny_sd_dir, components, unet_output=unet_output, **SHORT)
    x = images(2, 64, 128)
    labels = label_map(2, 64, 128, [(0, 1, 0, 32, 0, 64), (1, 12, 16, 64, 40, 128),
                                    (1, 7, 0, 8, 0, 8)]) if with_labels else None
    config = encoder.config
    with torch.no_grad():
        expected = diff.release_features(components, config, x, labels, generators(2))
    features = encoder.extractor(x, labels, generators(2))
    assert sorted(features) == sorted(expected) == [8, 16, 32, 64]
    for stride, value in expected.items():
        assert features[stride].shape == (2, value.shape[1], 64 // stride, 128 // stride)
        # Merged rows and reordered steps vs the literal loop round differently: 1e-4 of scale.
        assert_close_to_magnitude(features[stride], value, f'stride {stride}')
    changed = encoder.extractor(x, labels, generators(2, seed=3))[16]  # negative control
    assert (changed - expected[16]).abs().max() > 1e-2 * expected[16].abs().max()
