"""Several trajectories in one extraction: one UNet call per step, same features as alone.

Each trajectory gets fresh generators with the same seeds in the merged and in the separate
extraction, so both draw the same noise; features must agree to float32 tolerance.
"""
import pytest
import torch
from diff_helpers import SHORT, build_encoder, diff, generators, images, label_map



def _close(actual, expected):
    """Float32 tolerance: 1e-5 of the tensor's magnitude (batched rows round differently)."""
    torch.testing.assert_close(actual, expected, rtol=1e-4,
                               atol=1e-5 * float(expected.abs().max()))

# Prompted classes (1, 3, 12, 14) and unprompted ones (0, 2) in 64x64 label maps.
BLOCKS = {
    0: [(0, 0, 0, 64, 0, 64)],
    1: [(0, 3, 0, 64, 0, 24), (0, 2, 0, 8, 24, 64)],
    3: [(0, 3, 0, 64, 0, 16), (0, 12, 0, 16, 16, 64), (-1, 14, 32, 64, 32, 64)],
}


def _trajectories(batch, k, seed=0):
    """A steered and a label-free trajectory on the same images, with their own generators."""
    x = images(batch, seed=seed)
    blocks = [(image % batch, cls, *box) for image, cls, *box in BLOCKS[k]]
    labels = label_map(batch, 64, 64, blocks)
    return [diff.Trajectory(x, labels, generators(batch, seed=10)),
            diff.Trajectory(x, None, generators(batch, seed=20))]


def _fresh(trajectories):
    """The same trajectories with new generators of the same seeds."""
    return [diff.Trajectory(t.images, t.label_map,
                            None if t.generator is None else
                            [torch.Generator().manual_seed(g.initial_seed()) for g in t.generator])
            for t in trajectories]


def _count_unet_rows(unet):
    rows = []
    handle = unet.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    return rows, handle


def _assert_features_equal(merged, separate):
    assert merged.keys() == separate.keys()
    for stride in merged:
        _close(merged[stride], separate[stride])


@pytest.mark.parametrize('batch', [1, 2])
@pytest.mark.parametrize('k', [0, 1, 3])
def test_merged_extraction_equals_separate(tiny_sd_dir, components, batch, k):
    extractor = build_encoder(tiny_sd_dir, components, **SHORT).extractor
    trajectories = _trajectories(batch, k)
    rows, handle = _count_unet_rows(extractor.unet)
    separate, separate_rows = [], []
    for trajectory in _fresh(trajectories):
        separate += extractor.extract([trajectory])
        separate_rows.append(extractor.last_usage.rows)
    del rows[:]
    merged = extractor.extract(_fresh(trajectories))
    handle.remove()
    for merged_features, separate_features in zip(merged, separate):
        _assert_features_equal(merged_features, separate_features)
    steps = max(SHORT['saved_steps']) + 1
    expected = tuple(a + b for a, b in zip(*separate_rows))
    assert expected == ((1 + k) * batch + batch, ) * steps  # (2 + k) B rows per call
    assert extractor.last_usage == diff.UNetUsage(steps, expected)
    assert tuple(rows) == expected  # counted independently of last_usage


def test_label_free_trajectory_never_sees_a_prompted_row(tiny_sd_dir, components):
    """Merged with a steered trajectory, a label-free one equals its extraction alone."""
    extractor = build_encoder(tiny_sd_dir, components, **SHORT).extractor
    steered, free = _trajectories(2, 3)
    alone = extractor.extract(_fresh([free]))[0]
    merged = extractor.extract(_fresh([steered, free]))[1]
    _assert_features_equal(merged, alone)
    assert not torch.allclose(merged[16], extractor.extract(_fresh([steered]))[0][16])


def test_global_rng_draws_in_the_separate_order(tiny_sd_dir, components):
    """Without generators, trajectory by trajectory: same draws as separate extractions."""
    extractor = build_encoder(tiny_sd_dir, components, **SHORT).extractor
    trajectories = [diff.Trajectory(t.images, t.label_map) for t in _trajectories(1, 1)]
    torch.manual_seed(4)
    separate = [extractor.extract([t])[0] for t in trajectories]
    torch.manual_seed(4)
    merged = extractor.extract(trajectories)
    for merged_features, separate_features in zip(merged, separate):
        _assert_features_equal(merged_features, separate_features)


def test_sizes_are_grouped_and_shared_images_encoded_once(tiny_sd_dir, components):
    extractor = build_encoder(tiny_sd_dir, components, **SHORT).extractor
    small, large = images(1), images(1, 128, 64, seed=3)
    trajectories = [diff.Trajectory(small, None, generators(1, 1)),
                    diff.Trajectory(large, None, generators(1, 2)),
                    diff.Trajectory(small, None, generators(1, 3))]
    separate = [extractor.extract([t])[0] for t in _fresh(trajectories)]
    encodes = []
    handle = extractor.vae.encoder.register_forward_pre_hook(
        lambda module, args: encodes.append(args[0].shape[0]))
    merged = extractor.extract(_fresh(trajectories))
    handle.remove()
    for merged_features, separate_features in zip(merged, separate):
        _assert_features_equal(merged_features, separate_features)
    steps = max(SHORT['saved_steps']) + 1
    assert extractor.last_usage.rows == (2, ) * steps + (1, ) * steps  # 64x64 pair, then 128x64
    assert encodes == [1, 1]  # one VAE call per size; the shared 64x64 image encoded once


def test_encoder_splits_frozen_and_trainable_parts(tiny_sd_dir, components):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    trajectories = _trajectories(2, 1)
    with torch.no_grad():
        whole = [encoder(t.images, t.label_map, t.generator) for t in _fresh(trajectories)]
        raw = encoder.extract(_fresh(trajectories))
        decoded = [encoder.decode(r) for r in raw]
        alone = encoder(trajectories[1].images, generator=_fresh(trajectories)[1].generator)
    assert sorted(raw[0]) == list(encoder.recorded_strides)
    for maps, again in zip(whole, decoded):  # separate vs merged extraction: rounding
        for a, b in zip(maps, again):
            _close(b, a)
    for a, b in zip(whole[1], alone):
        _close(a, b)


def test_bad_trajectories_are_rejected(tiny_sd_dir, components):
    extractor = build_encoder(tiny_sd_dir, components, **SHORT).extractor
    with pytest.raises(ValueError, match='at least one Trajectory'):
        extractor.extract([])
    with pytest.raises(ValueError, match='expected Trajectory objects'):
        extractor.extract([images(1)])
    with pytest.raises(ValueError, match='multiples of'):
        extractor.extract([diff.Trajectory(images(1)), diff.Trajectory(images(1, 48, 48))])
