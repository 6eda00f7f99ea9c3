"""Build datasets from the real config files, pointed at the synthetic data on disk."""
from pathlib import Path
from typing import Optional

import pytest
from mmengine.config import Config

from mmseg.registry import DATASETS

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'datasets'


def retarget(obj, root: Path, rcs_min_pixels: Optional[int] = None):
    """Copy of a config with every ``data_root`` moved from ``data/[synthetic/]`` to ``root``."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key == 'data_root':
                rel = str(value).replace('data/synthetic/', '', 1).replace('data/', '', 1)
                value = str(root / rel)
            elif key == 'rare_class_sampling' and rcs_min_pixels is not None:
                value = dict(value, min_pixels=rcs_min_pixels)
            else:
                value = retarget(value, root, rcs_min_pixels)
            out[key] = value
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(retarget(v, root, rcs_min_pixels) for v in obj)
    return obj


def load_config(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / name))


@pytest.fixture(scope='session')
def build_from_config(synthetic_data_root):
    """``build(config_file, key='val_dataloader', rcs_min_pixels=None)`` -> dataset."""

    def build(name: str, key: str = 'val_dataloader', rcs_min_pixels: Optional[int] = None):
        cfg = load_config(name)[key]['dataset'].to_dict()
        return DATASETS.build(retarget(cfg, synthetic_data_root, rcs_min_pixels))

    return build
