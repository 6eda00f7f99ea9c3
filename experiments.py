"""Experiments as data: a table of :class:`Experiment` entries and a pure :func:`expand`.

Each experiment is a base config (an annotated file under ``configs/``), a tuple
of override variants (dotted keys, the same mechanism as ``--cfg-options``) and
a tuple of seeds. ``run_experiments.py`` writes one generated config per
(variant, seed) to ``configs/generated/local-exp<N>/`` and trains it into
``work_dirs/local-exp<N>/<name>``. Names follow the release:
``<YYMMDD_HHMM>_<stem>[_<variant slug>]_s<seed>_<uuid5>``.
"""
import os.path as osp
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

CONFIGS = 'configs/diff'
EXP50 = f'{CONFIGS}/diff-daformer_sd21_srconly-40k_gta2cs-512x512.py'
EXP51 = f'{CONFIGS}/diff-daformer_sd21_srconly-40k_gta2five-512x512.py'
DEMO = f'{CONFIGS}/diff-daformer_tiny_srconly_syn-demo.py'
DACS = f'{CONFIGS}/diff-daformer_sd21_dacs-40k_gta2{{}}-512x512.py'
# Run names of exp 60-62 under --target name the chosen target (`--exp 60 --target acdc` is
# named like exp 61).
DACS_STEM = 'diff-daformer_sd21_dacs-40k_gta2{target}-512x512'
SYN_DACS = f'{CONFIGS}/diff-daformer_tiny_dacs_syn2night.py'
SYN_SRC = f'{CONFIGS}/diff-daformer_tiny_srconly_syn2night.py'
# Ablations of exp 51 (the release's commented-out alternatives and two switches).
ABLATION = f'{CONFIGS}/diff-daformer_sd21_srconly-40k_gta2five-512x512_ablation-{{}}.py'
# Exp 51 with another Stable Diffusion UNet (configs/diff_configs/<family>.yaml).
FAMILY = f'{CONFIGS}/diff-daformer_{{}}_srconly-40k_gta2five-512x512.py'
MITB5 = 'configs/baselines/daformer_mitb5_srconly-40k_gta2five-512x512.py'

# The release's run-name stem of exp 50 (docs/method.md §2.5): gtaCAug source with colour
# augmentation, 2cs target, DG dataset + DACS wrapper in source-only mode, RCS T=0.01,
# DAFormer sep-ASPP head, DIFF backbone, poly schedule with warm-up.
RELEASE_STEM = 'gtaCAug2cs_dgdacs_srconly_rcs001_daformer_sepaspp_diff_poly10warm'

# Short names of override keys for variant slugs (an explicit dict, no string
# surgery). A key missing here is an error when a variant uses it.
ABBREVIATIONS = {
    'train_cfg.max_iters': 'it',
    'model.backbone.overrides.timesteps': 'ts',
    'model.backbone.overrides.saved_steps': 'ss',
    'model.backbone.overrides.unet_output': 'unet',
    'model.train_cfg.ipkl.enabled': 'ipkl',
    'optim_wrapper.optimizer.lr': 'lr',
}

# --debug: the release's short intervals (log every 10, validate every 200 iterations).
DEBUG_OVERRIDES = {'default_hooks.logger.interval': 10, 'train_cfg.val_interval': 200}


@dataclass(frozen=True)
class Experiment:
    """One row of the experiment table.

    Attributes:
        description: What the experiment shows.
        base: Config file (relative to the repository root).
        stem: Run-name stem (the release's for exp 50; else the config's stem).
        variants: Dotted-key override dicts, one run per variant (and seed).
        seeds: Seeds, one run per seed (and variant).
        setup: Named preparation steps run_experiments performs first
            (``tiny_sd``, ``synthetic_data``).
        target_stem: Run-name stem under ``--target``, ``{target}`` replaced by the
            target's abbreviation (DACS: ``..._gta2{target}-...``); empty: the stem plus
            ``_to-<targets>``.
    """
    description: str
    base: str
    stem: str = ''
    variants: Tuple[Mapping[str, Any], ...] = ({}, )
    seeds: Tuple[int, ...] = (0, )
    setup: Tuple[str, ...] = ()
    target_stem: str = ''

    @property
    def name_stem(self) -> str:
        return self.stem or osp.splitext(osp.basename(self.base))[0]


EXPERIMENTS: Dict[int, Experiment] = {
    0: Experiment('CPU demo: tiny SD + synthetic GTA-like source, evaluated on synthetic '
                  'Cityscapes-, ACDC- and Dark-Zurich-like targets', DEMO,
                  setup=('tiny_sd', 'synthetic_data')),
    50: Experiment('release: DIFF + IPKL on GTA (RCS, photometric aug.), Cityscapes val',
                   EXP50, stem=RELEASE_STEM),
    51: Experiment('exp 50 evaluated on Cityscapes, ACDC, Dark Zurich, BDD100K and Mapillary',
                   EXP51, stem=RELEASE_STEM.replace('2cs', '2five')),
    60: Experiment('DACS GTA->Cityscapes with DIFF', DACS.format('cs'), target_stem=DACS_STEM),
    61: Experiment('DACS GTA->ACDC with DIFF', DACS.format('acdc'), target_stem=DACS_STEM),
    62: Experiment('DACS GTA->Dark Zurich with DIFF', DACS.format('dzur'),
                   target_stem=DACS_STEM),
    70: Experiment('synthetic DACS (day source -> night target), tiny model', SYN_DACS,
                   seeds=(0, 1), setup=('tiny_sd', 'synthetic_data')),
    71: Experiment('source-only baseline of exp 70 (same length)', SYN_SRC, seeds=(0, 1),
                   setup=('tiny_sd', 'synthetic_data')),
    80: Experiment('ablation of exp 51: the release\'s 5 steps (t = 80, 60, 40, 20, 1, all kept)',
                   ABLATION.format('5steps')),
    81: Experiment('ablation of exp 51: 1 step (t = 100, kept)', ABLATION.format('1step')),
    82: Experiment('ablation of exp 51: ResNet features only (no transformer blocks)',
                   ABLATION.format('resnet-only')),
    83: Experiment('ablation of exp 51: smaller projections (64 / 128, 320, 512 channels)',
                   ABLATION.format('proj512')),
    84: Experiment('ablation of exp 51: medium projections (96 / 192, 384, 768 channels)',
                   ABLATION.format('proj768')),
    85: Experiment('ablation of exp 51: no path-controlled diffusion',
                   ABLATION.format('no-path-control')),
    86: Experiment('ablation of exp 51: no IPKL (one label-free pass per iteration)',
                   ABLATION.format('no-ipkl')),
    90: Experiment('baseline of exp 51: DAFormer (MiT-B5, ImageNet) with the same head, data, '
                   'schedule and five-domain evaluation', MITB5),
    91: Experiment('exp 51 with Stable Diffusion 1.5 as the frozen backbone',
                   FAMILY.format('sd15')),
    92: Experiment('exp 51 with Stable Diffusion 2.1-base (512 px, epsilon) as the backbone',
                   FAMILY.format('sd21-base')),
    93: Experiment('exp 51 with Stable Diffusion 2.0 (768-v) as the frozen backbone',
                   FAMILY.format('sd20')),
    94: Experiment('exp 51 with Stable Diffusion XL base 1.0 (two text towers, pooled text and '
                   'size/crop conditioning) as the frozen backbone', FAMILY.format('sdxl')),
}


def variant_slug(overrides: Mapping[str, Any]) -> str:
    """``it2-ts40_20`` for ``{'train_cfg.max_iters': 2, '...timesteps': [40, 20]}``."""
    parts = []
    for key in sorted(overrides):
        if key not in ABBREVIATIONS:
            raise KeyError(f'variant key {key!r} has no abbreviation; add it to ABBREVIATIONS')
        value = overrides[key]
        text = '_'.join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        parts.append(ABBREVIATIONS[key] + text.replace('.', '').replace('-', 'm'))
    return '-'.join(parts)


def nest(dotted: Mapping[str, Any]) -> Dict[str, Any]:
    """``{'a.b': 1, 'a.c': 2}`` -> ``{'a': {'b': 1, 'c': 2}}``."""
    nested: Dict[str, Any] = {}
    for key, value in dotted.items():
        node = nested
        *parents, leaf = key.split('.')
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f'override {key!r} conflicts with another override')
        node[leaf] = value
    return nested


def run_folder(exp_id: Union[int, str]) -> str:
    """``local-exp<N>`` for a table entry, ``local-<label>`` otherwise (e.g. --config)."""
    return f'local-exp{exp_id}' if isinstance(exp_id, int) else f'local-{exp_id}'


# Short names of the target domains in run names (`--target`).
TARGET_ABBREVIATIONS = {'cityscapes': 'cs', 'acdc': 'acdc', 'dark_zurich': 'dzur',
                        'bdd100k': 'bdd', 'mapillary': 'map'}


def target_slug(domains: Sequence[str]) -> str:
    """``to-acdc-dzur`` for ``['acdc', 'dark_zurich']``."""
    unknown = [d for d in domains if d not in TARGET_ABBREVIATIONS]
    if unknown:
        raise KeyError(f'target domain(s) {unknown} have no abbreviation; choose from '
                       f'{sorted(TARGET_ABBREVIATIONS)}')
    return 'to-' + '-'.join(TARGET_ABBREVIATIONS[d] for d in domains)


def expand(exp_id: Union[int, str], exp: Experiment, timestamp: str, git_rev: str = 'unknown',
           debug: bool = False, nonce: str = '', seeds: Optional[Sequence[int]] = None,
           target_runs: Optional[Sequence[Sequence[str]]] = None) -> List[Dict[str, Any]]:
    """One generated-config dict per (variant, target choice, seed); pure (no I/O, no clock).

    Args:
        exp_id: Experiment id (names the output folders).
        exp: The experiment.
        timestamp: ``YYMMDD_HHMM`` prefix of the names.
        git_rev: Commit recorded in each config.
        debug: Apply :data:`DEBUG_OVERRIDES`.
        nonce: Mixed into the 5-character uuid5 tag, so that two launches in
            the same minute get different names.
        seeds: Seeds to run instead of ``exp.seeds`` (``--seeds``).
        target_runs: Target-domain lists, one run each, written as the config's
            ``target_domains`` and named ``to-<domains>`` (``--target``); None keeps the
            config's own choice.

    Returns:
        list[dict]: each with ``_base_`` (relative to the generated file's
        folder ``configs/generated/local-exp<N>/``), ``name``, ``exp``,
        ``seed``, ``randomness``, ``work_dir``, ``git_rev`` and the nested
        overrides.
    """
    out_dir = f'configs/generated/{run_folder(exp_id)}'
    configs = []
    seeds = tuple(exp.seeds if seeds is None else seeds)
    if not seeds:
        raise ValueError(f'experiment {exp_id}: no seeds to run')
    for variant in exp.variants:
        slug = variant_slug(variant)
        for targets in (target_runs if target_runs is not None else [None]):
            stem, to = exp.name_stem, target_slug(targets) if targets else ''
            if targets and exp.target_stem:
                stem, to = exp.target_stem.format(target=to[len('to-'):]), ''
            for seed in seeds:
                core = '_'.join(p for p in (stem, slug, to, f's{seed}') if p)
                tag = uuid.uuid5(uuid.NAMESPACE_URL,
                                 f'diff/{exp_id}/{timestamp}/{core}/{nonce}').hex[:5]
                name = f'{timestamp}_{core}_{tag}'
                overrides = dict(variant, **(DEBUG_OVERRIDES if debug else {}))
                if targets:
                    overrides['target_domains'] = list(targets)
                cfg = dict(_base_=[osp.relpath(exp.base, out_dir)], name=name, exp=exp_id,
                           seed=seed, work_dir=f'work_dirs/{run_folder(exp_id)}/{name}',
                           git_rev=git_rev, **nest({'randomness.seed': seed, **overrides}))
                configs.append(cfg)
    names = [c['name'] for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f'experiment {exp_id}: duplicate run names {names}')
    return configs
