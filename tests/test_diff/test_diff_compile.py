"""``compile: true``: the UNet through torch.compile gives the eager features; rows are dynamic.

One test, on the tiny model. It compiles with dynamo's ``eager`` backend: the same tracing,
guards, hooks and dynamic-shape handling as the default inductor backend, without inductor's
C++ build (minutes on a busy 2-core machine). Inductor itself is what ``compile: true`` uses
in training and evaluation; the GPU check runs it at full size.
"""
import torch

from diff_helpers import (SMALL, assert_close_to_magnitude, build_encoder, diff, generators,
                          images, label_map)
from mmseg.utils.compile_stats import compile_stats

SHORT = dict(timesteps=[40, 14, 4], saved_steps=[2, 1])


def test_compiled_unet_equals_eager_and_rows_do_not_recompile(tiny_sd_dir):
    eager = build_encoder(tiny_sd_dir, **SHORT).extractor
    config = diff.DIFFConfig(model_id=str(tiny_sd_dir), **{**SMALL, **SHORT}, compile=True)
    compiled = diff.DiffusionFeatureExtractor(diff.load_sd_components(config), config,
                                              compile_options=dict(backend='eager'))
    one, two = images(1, 64, 64), images(2, 64, 64, seed=1)
    labels_k1 = label_map(1, 64, 64, [(0, 1, 0, 32, 0, 64)])
    labels_k2 = label_map(2, 64, 64, [(0, 1, 0, 32, 0, 64), (1, 3, 32, 64, 0, 64)])
    cases = [  # (images, label map): rows per UNet call 1, 2 (warm-up), then 6 and 1
        (one, None), (one, labels_k1), (two, labels_k2), (one, None)]
    graphs = []
    try:
        for index, (inputs, labels) in enumerate(cases):
            with torch.no_grad():
                reference = eager(inputs, labels, generators(inputs.shape[0]))
                features = compiled(inputs, labels, generators(inputs.shape[0]))
            assert eager.last_usage == compiled.last_usage
            for stride, value in reference.items():
                assert features[stride].dtype == torch.float32
                # Traced graphs may fuse or reorder ops vs eager: 1e-4 of the scale.
                assert_close_to_magnitude(features[stride], value, f'case {index}, stride {stride}')
            graphs.append(compile_stats()['graphs'])
        with torch.no_grad():  # negative control: other noise moves the features far beyond 1e-4
            other = compiled(one, None, generators(1, seed=7))  # vs case 3: seed 0
        assert (other[16] - features[16]).abs().max() > 1e-2 * features[16].abs().max()
    finally:
        compiled.release_compiled()
    assert compiled.last_usage.rows[0] == 1 and graphs[0] > 0
    # After the warm-up (one row, then several), a new number of rows compiles nothing.
    assert graphs[3] == graphs[2] == graphs[1]
    assert not compiled.unet._forward_hooks and not any(
        m._forward_hooks for m in compiled.unet.modules())  # released: no hook left
