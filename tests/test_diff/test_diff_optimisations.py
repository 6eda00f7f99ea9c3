"""Each optimisation of docs/differences.md §2 leaves the output unchanged: the extractor
against the release's computation (``diff.reference.release_features``), same weights and
the same noise (fresh generators of the same seeds), UNet calls counted with a hook.
"""
import collections
import contextlib

import pytest
import torch
from diff_helpers import (SHORT, assert_close_to_magnitude, build_encoder, diff, generators,
                          images, label_map)


class _UNetRows:
    """Batch rows of every UNet call (a forward pre-hook), while the block runs."""

    def __init__(self, unet):
        self.unet, self.rows = unet, []

    def __enter__(self):
        self._handle = self.unet.register_forward_pre_hook(
            lambda module, args: self.rows.append(args[0].shape[0]))
        return self

    def __exit__(self, *exc_info):
        self._handle.remove()


def _compare(model_id, components, x, labels=None, **keys):
    """Production and reference features of ``x``; returns both paths' UNet rows per call."""
    encoder = build_encoder(model_id, components, **keys)
    with torch.no_grad(), _UNetRows(components.unet) as fast:
        features = encoder.extractor(x, labels, generators(x.shape[0]))
    with torch.no_grad(), _UNetRows(components.unet) as release:
        expected = diff.release_features(components, encoder.config, x, labels,
                                         generators(x.shape[0]))
    assert sorted(features) == sorted(expected)
    for stride, value in expected.items():
        # Merged rows and skipped steps round differently from the literal loop: 1e-4 of scale.
        assert_close_to_magnitude(features[stride], value, f'stride {stride}')
    assert encoder.last_usage == diff.UNetUsage(len(fast.rows), tuple(fast.rows))
    return encoder, fast.rows, release.rows


def test_released_schedule_without_labels(tiny_sd_dir, components):
    """No UNet call after the last saved step; one row per image; no stride-64 branch."""
    encoder, fast, release = _compare(tiny_sd_dir, components, images(2))
    assert fast == [2] * 34 and release == [4] * 37
    x = images(2)
    with torch.no_grad():  # negative control: other noise, far beyond 1e-4
        first = encoder.extractor(x, generator=generators(2))[16]
        other = encoder.extractor(x, generator=generators(2, seed=7))[16]
    assert (other - first).abs().max() > 1e-2 * first.abs().max()


def test_released_schedule_with_label_map(tiny_sd_dir, components):
    """With k prompted classes present in the batch: (1 + k) B rows instead of (2 + k) B."""
    # Classes 3 and 12 in image 0, 14 in image 1; class 2 has no prompt.
    blocks = [(0, 3, 0, 64, 0, 8), (0, 12, 0, 8, 8, 64), (1, 14, 0, 64, 0, 64), (1, 2, 0, 4, 0, 4)]
    x, labels, k = images(2), label_map(2, 64, 64, blocks), 3
    _, fast, release = _compare(tiny_sd_dir, components, x, labels)
    assert fast == [(1 + k) * 2] * 34 and release == [(2 + k) * 2] * 37


def test_distinct_prompts_are_not_merged(tiny_sd_dir, components):
    _, fast, release = _compare(tiny_sd_dir, components, images(1), prompt='a city street',
                                **SHORT)
    assert fast == [2] * 5 and release == [2] * 6


def test_no_stride64_branch(tiny_sd_dir, components):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    assert not any('stride64' in name for name in encoder.state_dict())
    assert encoder.extractor.strides == [8, 16, 32, 64]  # recorded by the UNet, not aggregated
    assert encoder.recorded_strides == (8, 16, 32)


def test_custom_saved_steps_stop_after_the_last_one(tiny_sd_dir, components):
    _, fast, release = _compare(tiny_sd_dir, components, images(1),
                                timesteps=SHORT['timesteps'], saved_steps=[2])
    assert len(fast) == 3 and len(release) == 6


def _count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


def test_prompt_embeddings_are_cached(tiny_sd_dir):
    parts = diff.load_sd_components(str(tiny_sd_dir))
    calls, handle = _count_calls(parts.text_encoder)
    encoder = build_encoder(tiny_sd_dir, parts, **SHORT)
    assert len(calls) == 1  # once, at construction
    x, labels = images(1), label_map(1, 64, 64, [(0, 1, 0, 32, 0, 64)])
    with torch.no_grad():
        for _ in range(2):
            encoder(x, labels, generators(1))
        assert len(calls) == 1
        diff.release_features(parts, encoder.config, x, labels, generators(1))
    handle.remove()
    assert len(calls) == 1 + len(SHORT['timesteps'])  # the release: once per UNet call


@contextlib.contextmanager
def _count_host_syncs():
    """Count tensor -> Python conversions (each one waits for the device)."""
    counts = collections.Counter()
    names = ('item', 'tolist', '__bool__', '__float__', '__int__', '__index__')
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def counting(name):
        def method(self, *args, **kwargs):
            counts[name] += 1
            return originals[name](self, *args, **kwargs)
        return method
    for name in names:
        setattr(torch.Tensor, name, counting(name))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def test_no_host_sync_per_step(tiny_sd_dir, components):
    fast = build_encoder(tiny_sd_dir, components, **SHORT)
    x, labels = images(1), label_map(1, 64, 64, [(0, 1, 0, 32, 0, 64)])
    with torch.no_grad():
        with _count_host_syncs() as counts:
            fast(x, generator=generators(1))
        assert sum(counts.values()) == 0
        with _count_host_syncs() as counts:
            fast(x, labels, generators(1))
        assert sum(counts.values()) == 1  # the classes present in the label map, once
        with _count_host_syncs() as counts:
            diff.release_features(components, fast.config, x, None, generators(1))
        assert sum(counts.values()) >= len(SHORT['timesteps'])  # the release's per-step check


def test_precision_is_set_in_one_place(tiny_sd_dir, components):
    auto = build_encoder(tiny_sd_dir, components, dtype='auto', **SHORT)
    fp32 = build_encoder(tiny_sd_dir, components, dtype='float32', **SHORT)
    x = images(1)
    assert diff.precision.resolve_dtype('auto', torch.device('cpu')) == torch.float32
    assert diff.precision.resolve_dtype('auto', torch.device('cuda')) == torch.float16
    with torch.no_grad():
        for out, ref in zip(auto(x, generator=generators(1)), fp32(x, generator=generators(1))):
            assert torch.equal(out, ref)  # auto is float32 on the CPU: the same arithmetic
    # Built last: a half dtype holds the (here shared) frozen components in that precision.
    bf16 = build_encoder(tiny_sd_dir, components, dtype='bfloat16', **SHORT)
    with torch.no_grad():
        seen = []
        handle = components.unet.up_blocks[3].resnets[0].conv2.register_forward_hook(
            lambda module, inputs, output: seen.append(output.dtype))
        outputs = bf16(x, generator=generators(1))
        handle.remove()
    assert set(seen) == {torch.bfloat16}
    assert all(o.dtype == torch.float32 and torch.isfinite(o).all() for o in outputs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_no_host_sync_per_step_on_cuda(tiny_sd_dir, components):
    """CUDA's sync debug mode reports every host synchronisation (copies from the host too)."""
    import warnings
    device = torch.device('cuda', torch.cuda.current_device())
    fast = build_encoder(tiny_sd_dir, components).to(device)
    x = images(1).to(device)
    seen = []
    handle = components.unet.up_blocks[3].resnets[0].conv2.register_forward_hook(
        lambda module, inputs, output: seen.append(output.dtype))
    counts = {}
    def release():  # the frozen weights are held in float16 now, as the release held them
        with torch.autocast('cuda', dtype=torch.float16):
            diff.release_features(components, fast.config, x)
    paths = dict(fast=lambda: fast(x), release=release)
    for name, run in paths.items():
        with torch.no_grad():
            run()  # warm-up (lazy initialisation may synchronise)
            torch.cuda.synchronize()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                torch.cuda.set_sync_debug_mode('warn')
                try:
                    run()
                finally:
                    torch.cuda.set_sync_debug_mode('default')
        counts[name] = sum('synchroniz' in str(w.message) for w in caught)
    handle.remove()
    assert counts['fast'] < 5 and counts['release'] >= 37, counts
    assert torch.float16 in set(seen)  # dtype auto = float16 autocast on the GPU
