"""Every config file under configs/ loads and builds what it describes, with the tiny SD model.

Models are built with the tiny Stable Diffusion folder (and a short inversion) at their
configured widths; optimisers, schedulers, loops, hooks and metrics are built or looked
up in the registries; datasets are built on the synthetic data, whose folders mirror the
real layouts (``data/<name>/`` is redirected to the synthetic root).
"""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmseg import registry
from mmseg.registry import DATASETS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (REPO / 'configs').rglob('*.py') if 'generated' not in p.parts)
SHORT = dict(timesteps=[20, 8, 4], saved_steps=[2, 1])
_built_models = {}
_checked_datasets = set()
# every registry of the project (each also searches mmengine's parent registry)
_REGISTRIES = [getattr(registry, n) for n in dir(registry)
               if isinstance(getattr(registry, n), registry.Registry)]


def _redirect(node, synthetic: Path):
    """Point every data_root under data/ at the synthetic data (same layouts)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'data_root' and isinstance(value, str):
                rel = value[len('data/'):] if value.startswith('data/') else value
                rel = rel[len('synthetic/'):] if rel.startswith('synthetic/') else rel
                node[key] = str(synthetic / rel)
            elif key == 'rare_class_sampling' and isinstance(value, dict):
                value['min_pixels'] = min(value['min_pixels'], 100)  # tiny images
            else:
                _redirect(value, synthetic)
    elif isinstance(node, list):
        for value in node:
            _redirect(value, synthetic)


def _build_model(cfg, tiny_sd_dir, tiny_mit_b5_dir):
    model_cfg = copy.deepcopy(cfg.model)
    for node in _dicts(model_cfg):
        if node.get('type') == 'DIFF':
            node['overrides'] = dict(node.get('overrides') or {}, model_id=str(tiny_sd_dir),
                                     **SHORT)
        if node.get('type') in ('MiT', 'MixVisionTransformer'):
            node['pretrained'] = str(tiny_mit_b5_dir)
    key = repr(model_cfg)
    if key not in _built_models:
        _built_models[key] = MODELS.build(model_cfg)
    return _built_models[key]


def _dicts(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _dicts(value)


def _check_types(cfg):
    """Every `type` names a registered component of the matching registry."""
    for node in _dicts(cfg.to_dict()):
        name = node.get('type')
        if isinstance(name, str):
            assert any(r.get(name) is not None for r in _REGISTRIES), f'unregistered {name}'


@pytest.fixture(scope='module')
def tiny_mit_b5_dir(tmp_path_factory):
    """A one-block-per-stage MiT at B5's widths (the MiT baseline's head widths)."""
    from tools.make_tiny_mit import make_tiny_mit
    return make_tiny_mit(tmp_path_factory.mktemp('mit') / 'mit-b5-widths',
                         hidden_sizes=[64, 128, 320, 512])


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: str(p.relative_to(REPO / 'configs')))
def test_config_loads_and_builds(path, tiny_sd_dir, tiny_sd_family, synthetic_data_root,
                                 tiny_mit_b5_dir):
    cfg = Config.fromfile(str(path))
    _check_types(cfg)
    if 'model' in cfg:  # an SD XL config hooks SD XL's layers: its tiny family stands in
        model_dir = tiny_sd_family('sdxl') if 'sdxl' in path.name else tiny_sd_dir
        model = _build_model(cfg, model_dir, tiny_mit_b5_dir)
        assert any(p.requires_grad for p in model.parameters())
        if 'optim_wrapper' in cfg:
            ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
                type=cfg.optim_wrapper.get('constructor', 'DefaultOptimWrapperConstructor'),
                optim_wrapper_cfg={k: v for k, v in cfg.optim_wrapper.items()
                                   if k not in ('constructor', 'paramwise_cfg')},
                paramwise_cfg=cfg.optim_wrapper.get('paramwise_cfg')))
            optimizer = ctor(model).optimizer
            grouped = {id(p) for g in optimizer.param_groups for p in g['params']}
            assert all(p.requires_grad for p in model.parameters() if id(p) in grouped)
            for scheduler in cfg.get('param_scheduler') or []:
                PARAM_SCHEDULERS.build(dict(scheduler, optimizer=optimizer))
    loaders = {k: cfg.get(k) for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    for loop in ('val_cfg', 'test_cfg'):
        for name, loader in ((cfg.get(loop) or {}).get('extra_domains') or {}).items():
            loaders[f'{loop}.{name}'] = loader
    for where, loader in loaders.items():
        if not loader:
            continue
        dataset_cfg = copy.deepcopy(loader['dataset'])
        _redirect(dataset_cfg, synthetic_data_root)
        key = repr(dataset_cfg)
        if key not in _checked_datasets:  # many configs share a dataset: build each once
            item = DATASETS.build(dataset_cfg)[0]
            assert item['inputs'].dtype == torch.uint8 and item['inputs'].shape[0] == 3, where
            _checked_datasets.add(key)
