"""Each optimisation of docs/differences.md §2 leaves the output unchanged
(optimised vs straightforward).

Both encoders share the same loaded components and are initialised from the same seed, so
their trainable weights agree; the same generators give both the same noise.
"""
import collections
import contextlib

import pytest
import torch
from diff_helpers import (SHORT, assert_close_to_magnitude, build_encoder, diff, generators,
                          images, label_map)


def _pair(model_id, components, **keys):
    fast = build_encoder(model_id, components, optimize=True, **keys)
    slow = build_encoder(model_id, components, optimize=False, **keys)
    shared = fast.state_dict()
    assert all(torch.equal(v, slow.state_dict()[k]) for k, v in shared.items())
    return fast, slow


def _assert_same(outputs, expected):
    assert len(outputs) == len(expected) == 4
    for index, (out, ref) in enumerate(zip(outputs, expected)):
        # Merged / batched UNet rows round differently from the plain calls: 1e-4 of scale.
        assert_close_to_magnitude(out, ref, f'output {index}')


def test_released_schedule_without_labels(tiny_sd_dir, components):
    """No UNet call after the last saved step; one row per image; no stride-64 branch."""
    fast, slow = _pair(tiny_sd_dir, components)
    x = images(2)
    with torch.no_grad():
        outputs = fast(x, generator=generators(2))
        _assert_same(outputs, slow(x, generator=generators(2)))
        other = fast(x, generator=generators(2, seed=7))
    for out, changed in zip(outputs, other):  # negative control: other noise, far beyond 1e-4
        assert (changed - out).abs().max() > 1e-2 * out.abs().max()
    assert fast.last_usage.calls == 34 and set(fast.last_usage.rows) == {2}
    assert slow.last_usage.calls == 37 and set(slow.last_usage.rows) == {4}


def test_released_schedule_with_label_map(tiny_sd_dir, components):
    """With k prompted classes present in the batch: (1 + k) B rows instead of (2 + k) B."""
    fast, slow = _pair(tiny_sd_dir, components)
    # Classes 3 and 12 in image 0, 14 in image 1; class 2 has no prompt.
    blocks = [(0, 3, 0, 64, 0, 8), (0, 12, 0, 8, 8, 64), (1, 14, 0, 64, 0, 64), (1, 2, 0, 4, 0, 4)]
    x, labels, k = images(2), label_map(2, 64, 64, blocks), 3
    with torch.no_grad():
        _assert_same(fast(x, labels, generators(2)), slow(x, labels, generators(2)))
    assert fast.last_usage.calls == 34 and set(fast.last_usage.rows) == {(1 + k) * 2}
    assert slow.last_usage.calls == 37 and set(slow.last_usage.rows) == {(2 + k) * 2}


def test_distinct_prompts_are_not_merged(tiny_sd_dir, components):
    fast, slow = _pair(tiny_sd_dir, components, prompt='a city street', **SHORT)
    x = images(1)
    with torch.no_grad():
        _assert_same(fast(x, generator=generators(1)), slow(x, generator=generators(1)))
    assert fast.last_usage.calls == 5 and set(fast.last_usage.rows) == {2}


def test_no_stride64_branch(tiny_sd_dir, components):
    fast, slow = _pair(tiny_sd_dir, components, **SHORT)
    assert not any('stride64' in name for name in fast.state_dict())
    assert any('stride64' in name for name in slow.state_dict())
    assert fast.extractor.strides == [8, 16, 32, 64]  # recorded by the UNet, not aggregated
    assert fast.recorded_strides == (8, 16, 32) and slow.recorded_strides == (8, 16, 32, 64)


def _count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


def test_prompt_embeddings_are_cached(tiny_sd_dir):
    parts = diff.load_sd_components(str(tiny_sd_dir))
    calls, handle = _count_calls(parts.text_encoder)
    fast, slow = _pair(tiny_sd_dir, parts, **SHORT)
    assert len(calls) == 2  # once per encoder, at construction
    assert fast.extractor.text_encoder is None  # not needed any more
    x, labels = images(1), label_map(1, 64, 64, [(0, 1, 0, 32, 0, 64)])
    with torch.no_grad():
        for _ in range(2):
            out_fast = fast(x, labels, generators(1))
        assert len(calls) == 2
        out_slow = slow(x, labels, generators(1))
    assert len(calls) == 3  # the straightforward path encodes once per call, as released
    handle.remove()
    _assert_same(out_fast, out_slow)


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
    fast, slow = _pair(tiny_sd_dir, components, **SHORT)
    x, labels = images(1), label_map(1, 64, 64, [(0, 1, 0, 32, 0, 64)])
    with torch.no_grad():
        with _count_host_syncs() as counts:
            fast(x, generator=generators(1))
        assert sum(counts.values()) == 0
        with _count_host_syncs() as counts:
            fast(x, labels, generators(1))
        assert sum(counts.values()) == 1  # the classes present in the label map, once
        with _count_host_syncs() as counts:
            slow(x, generator=generators(1))
        assert sum(counts.values()) >= len(SHORT['timesteps'])  # the release's per-step check


def test_precision_is_set_in_one_place(tiny_sd_dir, components):
    auto = build_encoder(tiny_sd_dir, components, dtype='auto', **SHORT)
    fp32 = build_encoder(tiny_sd_dir, components, dtype='float32', **SHORT)
    x = images(1)
    assert diff.extractor.resolve_dtype('auto', torch.device('cpu')) == torch.float32
    assert diff.extractor.resolve_dtype('auto', torch.device('cuda')) == torch.float16
    with torch.no_grad():
        _assert_same(auto(x, generator=generators(1)), fp32(x, generator=generators(1)))
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


def test_custom_saved_steps_stop_after_the_last_one(tiny_sd_dir, components):
    fast, slow = _pair(tiny_sd_dir, components, timesteps=SHORT['timesteps'], saved_steps=[2])
    x = images(1)
    with torch.no_grad():
        _assert_same(fast(x, generator=generators(1)), slow(x, generator=generators(1)))
    assert fast.last_usage.calls == 3 and slow.last_usage.calls == 6


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_no_host_sync_per_step_on_cuda(tiny_sd_dir, components):
    """CUDA's sync debug mode reports every host synchronisation (copies from the host too)."""
    import warnings
    fast, slow = _pair(tiny_sd_dir, components)
    device = torch.device('cuda', torch.cuda.current_device())
    fast, slow = fast.to(device), slow.to(device)
    x = images(1).to(device)
    seen = []
    handle = components.unet.up_blocks[3].resnets[0].conv2.register_forward_hook(
        lambda module, inputs, output: seen.append(output.dtype))
    counts = {}
    for name, encoder in (('fast', fast), ('slow', slow)):
        with torch.no_grad():
            encoder(x)  # warm-up (lazy initialisation may synchronise)
            torch.cuda.synchronize()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                torch.cuda.set_sync_debug_mode('warn')
                try:
                    encoder(x)
                finally:
                    torch.cuda.set_sync_debug_mode('default')
        counts[name] = sum('synchroniz' in str(w.message) for w in caught)
    handle.remove()
    assert counts['fast'] < 5 and counts['slow'] >= 37, counts
    assert set(seen) == {torch.float16}  # dtype auto = float16 autocast on the GPU
