"""Checks run before the (slow) model build: are the weights and the data where the config says?

Building DIFF loads about 1.3 G parameters of Stable Diffusion; a missing dataset
should not be discovered only after that. Each check raises one error naming
the path and saying what to download or run.
"""
import copy
from pathlib import Path
from typing import Any, Iterator, List, Sequence, Tuple

from mmengine.config import Config

from mmseg.registry import DATASETS

from .config import REPO_ROOT

DIFF_TYPE = 'DIFF'
SD21_HUB_ID = 'stabilityai/stable-diffusion-2-1'
SD21_COMPONENTS = ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler')


class MissingInputError(FileNotFoundError):
    """Weights or data named by the config are not on disk."""


def _walk(node: Any, path: str = '') -> Iterator[Tuple[str, dict]]:
    """Every dict inside ``node`` (depth first) with its dotted location."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f'{path}[{i}]')


def _diff_model_dir(backbone: dict) -> Tuple[Path, Path, str]:
    """(yaml file, resolved model folder, model_id as written) of a DIFF backbone config."""
    from mmseg.models.backbones.diff.config import DIFFConfig
    yaml_path = Path(backbone.get('diff_config', 'diff_config.yaml'))
    if not yaml_path.is_absolute():
        yaml_path = REPO_ROOT / yaml_path
    overrides = dict(backbone.get('overrides') or {})
    cfg = DIFFConfig.from_yaml(yaml_path, **overrides)
    written = overrides.get('model_id')
    if written is None:
        import yaml
        written = (yaml.safe_load(yaml_path.read_text()) or {}).get('model_id', cfg.model_id)
    return yaml_path, Path(cfg.model_id), str(written)


def check_weights(cfg: Config) -> List[Path]:
    """Every DIFF backbone's Stable Diffusion folder must exist with its components.

    Returns:
        list[Path]: the model folders checked.

    Raises:
        MissingInputError: naming diff_config.yaml's ``model_id`` and what to download.
    """
    folders = []
    for where, node in _walk(copy.deepcopy(cfg.get('model', {})), 'model'):
        if node.get('type') != DIFF_TYPE:
            continue
        yaml_path, folder, written = _diff_model_dir(node)
        missing = [c for c in SD21_COMPONENTS if not (folder / c).is_dir()]
        if missing:
            state = 'does not exist' if not folder.is_dir() else f'lacks {missing}'
            source = f'{where}.overrides' if 'model_id' in (node.get('overrides') or {}) \
                else str(yaml_path)
            if yaml_path.resolve() != (REPO_ROOT / 'diff_config.yaml').resolve():
                # Another Stable Diffusion (configs/diff_configs/): its file says where to get it.
                raise MissingInputError(
                    f'Stable Diffusion weights not found: model_id {written!r} (from {source}) '
                    f'resolves to {folder}, which {state}. The comment at the top of {yaml_path} '
                    f'says where this model can be obtained (diffusers format, folders '
                    f'{", ".join(SD21_COMPONENTS)}); or set its model_id to your copy.')
            raise MissingInputError(
                f'Stable Diffusion 2.1 weights not found: model_id {written!r} (from {source}) '
                f'resolves to {folder}, which {state}. Get the diffusers-format SD 2.1 '
                f'(folders {", ".join(SD21_COMPONENTS)}; the official {SD21_HUB_ID} was '
                f'withdrawn) with `python tools/get_sd21.py --out {folder}` (unofficial mirror) '
                f'or `python tools/get_sd21.py --from-single-file '
                f'v2-1_768-ema-pruned.safetensors --out {folder}`, '
                'or set model_id in diff_config.yaml to your copy.')
        folders.append(folder)
    return folders


def _dataset_configs(cfg: Config, stages: Sequence[str]) -> Iterator[Tuple[str, dict]]:
    roots = {f'{s}_dataloader': cfg.get(f'{s}_dataloader') for s in stages}
    for loop in (f'{s}_cfg' for s in stages if s != 'train'):
        extra = (cfg.get(loop) or {}).get('extra_domains') or {}
        roots.update({f'{loop}.extra_domains.{k}': v for k, v in extra.items()})
    for name, root in roots.items():
        for where, node in _walk(copy.deepcopy(root), name):
            cls = DATASETS.get(node['type']) if isinstance(node.get('type'), str) else None
            if cls is not None and hasattr(cls, 'default_prefix'):
                yield where, node


def check_data(cfg: Config, stages: Sequence[str] = ('train', 'val', 'test')) -> List[Path]:
    """Every dataset's root and image folder must exist.

    Args:
        cfg: The config.
        stages: Which of the train/val/test dataloaders (and loop domains) to check.

    Returns:
        list[Path]: the image folders checked.

    Raises:
        MissingInputError: one error listing EVERY missing dataset (root and converter
            command of each), not only the first.
    """
    checked, problems = [], []
    for where, node in _dataset_configs(cfg, stages):
        cls = DATASETS.get(node['type'])
        root = Path(node.get('data_root', ''))
        prefix = dict(node.get('data_prefix') or cls.default_prefix())
        img_dir = root / prefix.get('img_path', '')
        hint = f' To prepare it: {cls.PREPARE}.' if getattr(cls, 'PREPARE', '') else ''
        layout = getattr(cls, 'LAYOUT', '')
        if not root.is_dir() or not img_dir.is_dir():
            problem = (f'data root {root} does not exist' if not root.is_dir() else
                       f'image folder {img_dir} does not exist')
            problems.append(f'{where} ({cls.__name__}): {problem}. Expected layout: '
                            f'{layout}.{hint} See data/README.md.')
            continue
        checked.append(img_dir)
    if problems:
        raise MissingInputError('\n'.join(problems))
    return checked


def check_inputs(cfg: Config, stages: Sequence[str] = ('train', 'val')) -> None:
    """Data of ``stages`` and the weights, before any model is built.

    Raises:
        MissingInputError: one error that lists every missing input (data and
            weights), so a new user learns everything to download at once.
    """
    problems = []
    for check in (lambda: check_data(cfg, stages), lambda: check_weights(cfg)):
        try:
            check()
        except MissingInputError as error:
            problems.append(str(error))
    if problems:
        raise MissingInputError('\n'.join(problems))
