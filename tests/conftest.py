"""Shared fixtures: offline by default, a tiny SD-2.1-shaped model and synthetic data on disk.

Both fixtures go through the project's own writers (``tools/make_tiny_sd.py``
and ``tools/make_synthetic_data.py``), so every test exercises the real
loading code and the real on-disk layouts.
"""
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
# The tests run tiny models in several pytest-xdist workers: one intra-op thread per worker
# avoids oversubscribing the cores (measured: 31 s -> 4 s for one test on 2 busy cores).
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_sd_dir(tmp_path_factory, worker_id) -> Path:
    """A diffusers-format, SD-2.1-shaped folder with tiny seeded weights.

    Written once per test run: pytest-xdist workers share it through their common temporary
    root (the first one writes it under a file lock, the others wait and reuse it), since
    calibrating its VAE is the costliest part of every worker's start. Tests never modify it.
    """
    from filelock import FileLock

    from tools.make_tiny_sd import make_tiny_sd
    base = tmp_path_factory.getbasetemp()
    root = base.parent if worker_id != 'master' else base
    with FileLock(str(root / 'tiny-sd21.lock')):
        return make_tiny_sd(root / 'tiny-sd21', seed=0)


@pytest.fixture(scope='session')
def tiny_sd_family(tiny_sd_dir, tmp_path_factory):
    """``make(family)``: a tiny folder of another SD family (``tools/make_tiny_sd.py --family``),
    written once per session; its VAE is copied from ``tiny_sd_dir`` (identical weights)."""
    from tools.make_tiny_sd import make_tiny_sd
    root = tmp_path_factory.mktemp('tiny-sd-families')

    def make(family: str) -> Path:
        return make_tiny_sd(root / family, seed=0, family=family, vae_from=tiny_sd_dir)
    return make


@pytest.fixture(scope='session')
def synthetic_data_root(tmp_path_factory) -> Path:
    """Small synthetic GTA / Cityscapes / ACDC / Dark Zurich sets, raw and converted."""
    from tools.make_synthetic_data import prepare_synthetic_data
    return prepare_synthetic_data(tmp_path_factory.mktemp('synthetic') / 'data', seed=0)
