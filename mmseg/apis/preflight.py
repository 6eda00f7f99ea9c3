"""Checks run before the (slow) model build: are the weights and the data where the config says?

Building DIFF loads about 1.3 G parameters of Stable Diffusion; a missing dataset
should not be discovered only after that. Each check raises one error naming
the path and saying what to download or run. Then every image and label of the training
and validation sets is opened (:func:`check_dataset_samples`, docs/data-checks.md).
"""
import copy
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from mmseg.datasets.sample_check import (CheckResult, check_samples, count_bad, labelled_pairs,
                                         problem_report)
from mmseg.datasets.transforms.loading import BadInputFileError
from mmseg.registry import DATASETS

from .config import REPO_ROOT

DIFF_TYPE = 'DIFF'
SD21_HUB_ID = 'stabilityai/stable-diffusion-2-1'
SD21_COMPONENTS = ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler')


class MissingInputError(FileNotFoundError):
    """Weights or data named by the config are not on disk."""


class WorkDirError(PermissionError):
    """The work dir cannot be created or written."""


def check_work_dir(work_dir: str) -> Path:
    """Create ``work_dir`` if needed and prove it writable (a probe file, removed at once).

    Raises:
        WorkDirError: naming the folder and the cause (read-only, no permission, ...).
    """
    import tempfile
    folder = Path(work_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix='.write-test-'):
            pass
    except OSError as error:
        raise WorkDirError(f'cannot write into the work dir {folder}: '
                           f'{error.strerror or error}; choose a writable --work-dir') from None
    return folder


class BadSamplesError(BadInputFileError):
    """The start-up data check found bad images or labels (all of them are listed)."""


class DataCheckOptionError(ValueError):
    """The config key ``data_check`` holds an unknown key or a value of the wrong type."""


#: The config key ``data_check`` (every entry optional) and its defaults.
DATA_CHECK_DEFAULTS: Dict[str, Any] = dict(
    enabled=True,  # open every image and label of the training and validation sets
    skip_bad_samples=False,  # leave bad samples out (with a count) instead of stopping
    workers=None,  # threads (default: the CPU count, at most 8)
    cache_dir=None)  # default: $DIFF_CACHE_DIR, else $XDG_CACHE_HOME/diff, else ~/.cache/diff


def _walk(node: Any, path: str = '') -> Iterator[Tuple[str, dict]]:
    """Every dict inside ``node`` (depth first) with its dotted location."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f'{path}[{i}]')


def _diff_config(yaml_path: Path, overrides: dict, where: str):
    """The DIFF config of a backbone; an invalid value is blamed on where it came from.

    Raises:
        ConfigError: naming the YAML file when the file alone is invalid, else
            ``<where>.overrides`` (the override made it invalid).
    """
    from mmseg.models.backbones.diff.config import ConfigError, DIFFConfig
    try:
        return DIFFConfig.from_yaml(yaml_path, **overrides)
    except ConfigError as error:
        if not overrides:
            raise
        try:
            DIFFConfig.from_yaml(yaml_path)
        except ConfigError:
            raise error from None  # the file itself is invalid: its name is in the message
        text = str(error)
        text = text[len(f'{yaml_path}: '):] if text.startswith(f'{yaml_path}: ') else text
        raise ConfigError(f'{where}.overrides (given on top of {yaml_path}, which is valid): '
                          f'{text}') from None


def check_timesteps(cfg, folder: Path, source: str) -> None:
    """The DIFF timesteps must be below the scheduler's ``num_train_timesteps``.

    Raises:
        ConfigError: naming ``source`` (the YAML file or the overrides) and the limit.
    """
    import json

    from mmseg.models.backbones.diff.config import ConfigError
    scheduler = folder / 'scheduler' / 'scheduler_config.json'
    try:
        limit = json.loads(scheduler.read_text(encoding='utf-8')).get('num_train_timesteps')
    except (OSError, ValueError, AttributeError):
        return  # the weights check reports an incomplete folder
    if isinstance(limit, int) and max(cfg.timesteps) >= limit:
        raise ConfigError(f'{source}: DIFF config key \'timesteps\': expected values < {limit} '
                          f'(num_train_timesteps of {scheduler}), got {max(cfg.timesteps)}')


def _diff_model_dir(backbone: dict, where: str = 'model.backbone') -> Tuple[Path, Path, str]:
    """(yaml file, resolved model folder, model_id as written) of a DIFF backbone config."""
    yaml_path = Path(backbone.get('diff_config', 'diff_config.yaml'))
    if not yaml_path.is_absolute():
        yaml_path = REPO_ROOT / yaml_path
    overrides = dict(backbone.get('overrides') or {})
    cfg = _diff_config(yaml_path, overrides, where)
    check_timesteps(cfg, Path(cfg.model_id),
                    f'{where}.overrides' if 'timesteps' in overrides else str(yaml_path))
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
        yaml_path, folder, written = _diff_model_dir(node, where)
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


def _dataset_configs(cfg: Config, stages: Sequence[str],
                     copy_nodes: bool = True) -> Iterator[Tuple[str, dict]]:
    """(location, config dict) of every folder dataset of ``stages`` (copies unless told)."""
    roots = {f'{s}_dataloader': cfg.get(f'{s}_dataloader') for s in stages}
    for loop in (f'{s}_cfg' for s in stages if s != 'train'):
        extra = (cfg.get(loop) or {}).get('extra_domains') or {}
        roots.update({f'{loop}.extra_domains.{k}': v for k, v in extra.items()})
    for name, root in roots.items():
        for where, node in _walk(copy.deepcopy(root) if copy_nodes else root, name):
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


def data_check_options(cfg: Config) -> Dict[str, Any]:
    """The config key ``data_check`` merged over :data:`DATA_CHECK_DEFAULTS`.

    Raises:
        DataCheckOptionError: an unknown key or a value of the wrong type, named.
    """
    given = cfg.get('data_check') or {}
    if not isinstance(given, dict):
        raise DataCheckOptionError(f'data_check must be a dict such as dict(skip_bad_samples='
                                   f'True), got {given!r}')
    unknown = sorted(set(given) - set(DATA_CHECK_DEFAULTS))
    if unknown:
        raise DataCheckOptionError(f'data_check: unknown key(s) {unknown}; expected some of '
                                   f'{sorted(DATA_CHECK_DEFAULTS)}')
    options = dict(DATA_CHECK_DEFAULTS, **given)
    for key in ('enabled', 'skip_bad_samples'):
        if not isinstance(options[key], bool):
            raise DataCheckOptionError(f'data_check.{key} must be True or False, got '
                                       f'{options[key]!r}')
    workers = options['workers']
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise DataCheckOptionError(f'data_check.workers must be a positive integer or None, '
                                   f'got {workers!r}')
    return options


def check_dataset_samples(
        cfg: Config, stages: Sequence[str] = ('train', 'val')) -> List[Tuple[str, CheckResult]]:
    """Open every image and label of the datasets of ``stages``; report all problems at once.

    With ``data_check.skip_bad_samples=True`` the bad samples are left out instead: each
    dataset's config gets their images in ``skip_img_paths`` (``cfg`` is changed in place, so
    the saved config names them) and their count is printed. ``data_check.enabled=False``
    skips the check.

    Returns:
        (location, result) per dataset checked.

    Raises:
        BadSamplesError: one error whose first line counts the bad samples and says how to go
            on, followed by the report (every problem, grouped by dataset).
    """
    options = data_check_options(cfg)
    if not options['enabled']:
        return []
    checked, nodes, seen = [], [], {}
    for where, node in _dataset_configs(cfg, stages, copy_nodes=False):
        spec = dict(copy.deepcopy(node), pipeline=[], lazy_init=False, serialize_data=False)
        name = f'{where} ({spec["type"]})'
        pairs = labelled_pairs(DATASETS.build(spec))
        key = tuple(pairs)
        if key not in seen:  # the same data under two names is checked once
            seen[key] = check_samples(pairs, options['workers'], options['cache_dir'],
                                      desc=f'checking {where}')
        checked.append((name, seen[key]))
        nodes.append(node)
    bad, total = count_bad(checked)
    opened = sum(r.opened for r in seen.values())
    if not bad:
        print_log(f'data check: {total} samples of {len(checked)} dataset(s) fine ({opened} '
                  'opened, the others unchanged since their last check)', logger='current',
                  level=logging.INFO)
        return checked
    report = problem_report(checked)
    if not options['skip_bad_samples']:
        raise BadSamplesError(
            f'data check: {bad} of {total} samples are bad (listed below); fix or remove '
            'them, or leave them out with --cfg-options data_check.skip_bad_samples=True\n'
            + report)
    for (name, result), node in zip(checked, nodes):
        if result.problems:
            node['skip_img_paths'] = sorted(set(node.get('skip_img_paths') or ())
                                            | set(result.problems))
            if len(result.problems) == result.total:
                raise BadSamplesError(f'data check: every sample of {name} is bad\n{report}')
    print_log(f'data check: {bad} of {total} samples are bad and left out '
              f'(data_check.skip_bad_samples=True):\n{report}', logger='current',
              level=logging.WARNING)
    return checked


def check_inputs(cfg: Config, stages: Sequence[str] = ('train', 'val')) -> None:
    """The work dir, data of ``stages`` and the weights before any model is built; every sample.

    Raises:
        WorkDirError: the work dir is not writable.
        MissingInputError: one error that lists every missing input (data and
            weights), so a new user learns everything to download at once.
        BadSamplesError: bad images or labels (:func:`check_dataset_samples`).
    """
    if cfg.get('work_dir'):
        check_work_dir(cfg.work_dir)
    problems = []
    for check in (lambda: check_data(cfg, stages), lambda: check_weights(cfg)):
        try:
            check()
        except MissingInputError as error:
            problems.append(str(error))
    if problems:
        raise MissingInputError('\n'.join(problems))
    check_dataset_samples(cfg, stages)
