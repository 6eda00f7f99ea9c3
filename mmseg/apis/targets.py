"""One config key chooses the target domains: ``target_domains``.

A config that evaluates on named domains states the candidates once and the choice once::

    domain_datasets = dict(cityscapes=..., acdc=..., ...)      # labelled val set per domain
    domain_test_datasets = dict(cityscapes=..., acdc=..., ...)  # unlabelled test split (optional)
    uda_target_datasets = dict(cityscapes=..., acdc=..., ...)   # UDA target train set (optional)
    target_domains = ['cityscapes']                             # or several, or ['all']

:func:`resolve_target_domains` then writes everything that depends on the choice: the
val and test dataloaders of the first domain, the ``domain`` and ``extra_domains`` of the
``MultiValLoop`` / ``MultiTestLoop`` (so metrics, folders and test_metrics.json are named
after the real domains) and, in an adaptation config (``UDADataset``), the target
dataset, which is the FIRST of ``target_domains`` (all of them are evaluated).
``test_split = 'test'`` evaluates the unlabelled test splits instead (``--format-only``);
``targets_for_evaluation_only = True`` (``tools/test.py``) leaves the training data alone.

:func:`apply_config_options` merges ``--cfg-options`` around the resolution: before it
(so ``target_domains=[acdc]`` or a changed ``domain_datasets`` entry takes effect) and after
it (so ``val_cfg.extra_domains.acdc.dataset.indices=2`` edits the generated loader).
``extra_domains.<name>=None`` drops a domain; setting ``val_cfg.domain`` by hand is an
error that points to ``target_domains``.
"""
import copy
from typing import Dict, List, Mapping, Optional, Sequence

from mmengine.config import Config

TARGET_KEY = 'target_domains'
ALL = 'all'
#: Loader settings used when the config has no val/test dataloader to copy them from.
DEFAULT_LOADER = dict(batch_size=1, num_workers=1, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False))
_LOOP_TYPES = dict(val='MultiValLoop', test='MultiTestLoop')


class TargetDomainError(ValueError):
    """``target_domains`` names a domain the config cannot evaluate (or conflicts)."""


def _plain(node):
    """ConfigDict/list -> plain dict/list (deep copy)."""
    if isinstance(node, Mapping):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_plain(v) for v in node)
    return copy.deepcopy(node)


def chosen_domains(cfg: Config, candidates: Optional[Sequence[str]] = None) -> List[str]:
    """``target_domains`` checked against ``domain_datasets``, with 'all' expanded.

    Raises:
        TargetDomainError: naming the unknown domains and the choices.
    """
    available = list(candidates if candidates is not None else cfg.get('domain_datasets') or {})
    return expand_domains(cfg.get(TARGET_KEY), available)


def expand_domains(chosen, available: Sequence[str]) -> List[str]:
    """The chosen domain names in order, 'all' expanded, each checked against ``available``.

    Raises:
        TargetDomainError: naming the unknown domains and the choices.
    """
    if isinstance(chosen, str):
        chosen = [chosen]
    if not available:
        raise TargetDomainError(f'{TARGET_KEY}: this config has no domain_datasets to choose '
                                'from (see configs/_base_/datasets/dg_val_domains.py)')
    if not chosen:
        raise TargetDomainError(f'{TARGET_KEY} is empty; choose from {list(available)} or '
                                f'{ALL!r}')
    names: List[str] = []
    for name in chosen:
        for domain in (available if name == ALL else [name]):
            if domain not in names:
                names.append(domain)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise TargetDomainError(f'{TARGET_KEY}: unknown domain(s) {unknown}; this config has '
                                f'{list(available)} (or {ALL!r}) in domain_datasets')
    return names


def is_adaptation(cfg: Config) -> bool:
    """Whether the config trains with a UDA target (one target per run)."""
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    return dataset.get('type') == 'UDADataset'


def _loader_settings(cfg: Config, stage: str) -> dict:
    loader = cfg.get(f'{stage}_dataloader')
    settings = _plain(loader) if isinstance(loader, Mapping) else dict(DEFAULT_LOADER)
    settings.pop('dataset', None)
    return settings


def _datasets_for(cfg: Config, stage: str, domains: Sequence[str]) -> Dict[str, dict]:
    if stage == 'test' and cfg.get('test_split', 'val') == 'test':
        key = 'domain_test_datasets'
        table = cfg.get(key) or {}
        missing = [d for d in domains if d not in table]
        if missing:
            raise TargetDomainError(
                f'test_split=test: {missing} have no test split in {key} (available: '
                f'{sorted(table)}); BDD100K and Mapillary have no public test server')
    elif cfg.get('test_split', 'val') not in ('val', 'test'):
        raise TargetDomainError(f"test_split must be 'val' or 'test', got {cfg.test_split!r}")
    else:
        table = cfg.get('domain_datasets')
    return {d: _plain(table[d]) for d in domains}


def _set_loop(cfg: Config, stage: str, domains: Sequence[str]) -> None:
    """``<stage>_dataloader`` = the first domain, ``<stage>_cfg`` = a multi-domain loop."""
    settings = _loader_settings(cfg, stage)
    datasets = _datasets_for(cfg, stage, domains)
    main, *rest = domains
    loop = _plain(cfg.get(f'{stage}_cfg') or {})
    if loop.get('type') in (None, 'ValLoop', 'TestLoop'):  # one domain: still name its metrics
        loop['type'] = _LOOP_TYPES[stage]
    loop['domain'] = main
    loop['extra_domains'] = {d: dict(copy.deepcopy(settings), dataset=datasets[d]) for d in rest}
    evaluators = {k: v for k, v in (loop.get('extra_evaluators') or {}).items() if k in rest}
    if evaluators:
        loop['extra_evaluators'] = evaluators
    else:
        loop.pop('extra_evaluators', None)
    cfg[f'{stage}_dataloader'] = dict(settings, dataset=datasets[main])
    cfg[f'{stage}_cfg'] = loop


def _set_uda_target(cfg: Config, domain: str) -> None:
    if not is_adaptation(cfg):
        return
    table = cfg.get('uda_target_datasets')
    if table is None:
        raise TargetDomainError(f'{TARGET_KEY}: this adaptation config has no '
                                'uda_target_datasets, so its target cannot be chosen')
    if domain not in table:
        raise TargetDomainError(f'{TARGET_KEY}: no adaptation target set for {domain!r} in '
                                f'uda_target_datasets (available: {sorted(table)})')
    cfg.train_dataloader.dataset.target = _plain(table[domain])


def resolve_target_domains(cfg: Config) -> Config:
    """Write loops, loaders and the UDA target from ``target_domains`` (in place).

    A config without ``target_domains`` is returned unchanged.
    """
    if cfg.get(TARGET_KEY) is None:
        return cfg
    domains = chosen_domains(cfg)
    cfg[TARGET_KEY] = domains
    for stage in ('val', 'test'):
        if cfg.get(f'{stage}_cfg') is not None or cfg.get(f'{stage}_dataloader') is not None:
            _set_loop(cfg, stage, domains)
    if not cfg.get('targets_for_evaluation_only', False):  # tools/test.py sets it
        _set_uda_target(cfg, domains[0])
    return cfg


def _check_after_options(cfg: Config) -> None:
    """Drop ``extra_domains.<x>=None``; refuse hand-set domains that contradict the key."""
    domains = cfg[TARGET_KEY]
    hint = (f'this config chooses its domains with {TARGET_KEY} = {domains}; set that key '
            f"instead (--cfg-options \"{TARGET_KEY}=[acdc,dark_zurich]\", or run_experiments.py "
            '--target / tools/test.py --domains)')
    for stage in ('val', 'test'):
        loop = cfg.get(f'{stage}_cfg')
        if not loop:
            continue
        if loop.get('domain') != domains[0]:
            raise TargetDomainError(f'{stage}_cfg.domain={loop.get("domain")!r} but the first '
                                    f'target domain is {domains[0]!r}: {hint}')
        extra = loop.get('extra_domains') or {}
        for name in list(extra):
            if extra[name] is None:
                del extra[name]
            elif name not in domains or 'dataset' not in extra[name]:
                raise TargetDomainError(f'{stage}_cfg.extra_domains.{name} is not one of the '
                                        f'target domains: {hint}')


def apply_config_options(cfg: Config, options: Optional[Mapping] = None) -> Config:
    """Merge ``options`` and resolve ``target_domains`` (see the module docstring)."""
    if options:
        cfg.merge_from_dict(dict(options))
    if cfg.get(TARGET_KEY) is None:
        return cfg
    resolve_target_domains(cfg)
    if options:
        cfg.merge_from_dict(dict(options))
        cfg[TARGET_KEY] = chosen_domains(cfg)
    _check_after_options(cfg)
    return cfg
