"""Helpers for the tests of the copyable ``diff`` package, imported standalone (no ``mmseg``).

The package is loaded from its folder under the top-level name ``diff``, as a user who copied
the folder would import it, so these tests exercise it without the rest of the project.
"""
import importlib.util
import sys
from pathlib import Path

import torch

PACKAGE_DIR = Path(__file__).resolve().parents[2] / 'mmseg' / 'models' / 'backbones' / 'diff'


def _import_standalone():
    if 'diff' not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            'diff', PACKAGE_DIR / '__init__.py', submodule_search_locations=[str(PACKAGE_DIR)])
        module = importlib.util.module_from_spec(spec)
        sys.modules['diff'] = module
        spec.loader.exec_module(module)
    return sys.modules['diff']


diff = _import_standalone()

# Narrow widths so aggregation and finecoder stay small (GN16 needs bottlenecks of 16k).
SMALL = dict(projection_channels=[64, 128, 128], stride4_channels=32)
# A short schedule for tests that do not check the released one: 6 steps, 2 saved; t = 11
# and 14 are inside the eta window, so two updates draw noise.
SHORT = dict(timesteps=[40, 30, 14, 11, 8, 4], saved_steps=[4, 1])


def build_encoder(model_id, components=None, seed=0, **keys):
    """A DIFFEncoder on the tiny model with SMALL widths, initialised after manual_seed(seed)."""
    config = diff.DIFFConfig(model_id=str(model_id), **{**SMALL, **keys})
    parts = components if components is not None else diff.load_sd_components(config)
    torch.manual_seed(seed)
    return diff.DIFFEncoder(config, parts)


def generators(batch, seed=0):
    """One seeded CPU generator per image."""
    return [torch.Generator().manual_seed(seed + index) for index in range(batch)]


def images(batch=1, height=64, width=64, seed=0):
    """Random RGB images in [-1, 1]."""
    noise = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))
    return noise * 2 - 1


def assert_close_to_magnitude(actual, expected, name='', relative=1e-4):
    """Equal up to ``relative`` of ``expected``'s largest magnitude: for results whose float
    arithmetic differs (batched vs single, merged vs separate, fused vs plain kernels), where
    rounding differences follow the tensor's scale, not each element's, and change with the CPU
    and thread count."""
    actual, expected = actual.detach(), expected.detach()
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=0, atol=relative * scale + 1e-12,
                               msg=lambda m: f'{name}: {m}' if name else m)


def label_map(batch, height, width, blocks):
    """An ignore-filled label map with ``blocks``: [(image, class, y0, y1, x0, x1), ...]."""
    labels = torch.full((batch, 1, height, width), 255, dtype=torch.long)
    for image, cls, y0, y1, x0, x1 in blocks:
        labels[image, :, y0:y1, x0:x1] = cls
    return labels
