"""Count the trainable and frozen parameters of a model, part by part, and its cost per step.

Nothing is downloaded and no weight is loaded: the networks are built on PyTorch's ``meta``
device (shapes only) from the architecture of the ``model_id`` folder named in the DIFF config,
or, when that folder does not exist, from the Stable Diffusion architecture of ``--family``
(default: the family a ``configs/diff_configs/<family>.yaml`` is named after, else SD 2.1;
diff/architectures.py). For an experiment (``--exp N``) or an mmseg config
(``--config``) the backbone and decode head are the config's (a DIFF backbone with its
``diff_config`` and ``overrides``, or the MiT-B5 baseline), and the tool also prints the feature
widths and the UNet calls and rows of one training step and one evaluation image. Those counts
depend on the config (steps, prompts, IPKL), not on the widths or the architecture, so they
are measured on the tiny model of the config's family (``tools/make_tiny_sd.py``, SD 2.1 for
other configs; a 64x64 image, batch 1, every prompted class of ``label_prompts`` in the label
map: the most rows path control can add).

Usage::

    python tools/get_param_count.py [--diff-config diff_config.yaml]
        [--model-config configs/_base_/models/daformer_sepaspp_diff.py] [--set key=value ...]
        [--family sd21|sd21-base|sd20|sd15|sdxl]
    python tools/get_param_count.py --exp 80 [--no-usage]
    python tools/get_param_count.py --config configs/diff/<file>.py
"""
import argparse
import copy
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger(__name__)

MIT_TYPES = ('MiT', 'MixVisionTransformer')
# SegFormer MiT-B5 (nvidia/mit-b5's config.json), for counting without the folder.
MIT_B5 = dict(num_channels=3, num_encoder_blocks=4, depths=[3, 6, 40, 3],
              sr_ratios=[8, 4, 2, 1], hidden_sizes=[64, 128, 320, 512],
              patch_sizes=[7, 3, 3, 3], strides=[4, 2, 2, 2], num_attention_heads=[1, 2, 5, 8],
              mlp_ratios=[4, 4, 4, 4])
Rows = List[Tuple[str, int, int]]


def _count(module: Optional[torch.nn.Module]) -> Tuple[int, int]:
    if module is None:
        return 0, 0
    params = list(module.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return trainable, sum(p.numel() for p in params) - trainable


def _components_on_meta(folder: Path):
    """SD components of ``folder`` built from its config files only (no weights read)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection,
                              CLIPTokenizer)

    from mmseg.models.backbones.diff import SDComponents
    second = {}
    with torch.device('meta'):
        unet = UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(folder, subfolder='unet'))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder, subfolder='vae'))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / 'text_encoder'))
        if (folder / 'text_encoder_2').is_dir():  # a second text tower (SD XL's layout)
            second = dict(
                text_encoder_2=CLIPTextModelWithProjection(
                    CLIPTextConfig.from_pretrained(folder / 'text_encoder_2')),
                tokenizer_2=CLIPTokenizer.from_pretrained(folder, subfolder='tokenizer_2'))
    return SDComponents(unet, vae, text_encoder,
                        CLIPTokenizer.from_pretrained(folder, subfolder='tokenizer'),
                        DDIMScheduler.from_pretrained(folder, subfolder='scheduler'), **second)


def _diff_encoder_on_meta(diff_config: Path, overrides: dict, family: Optional[str]):
    """(DIFFEncoder on meta, its components) from the config's folder or the family's sizes."""
    from mmseg.models.backbones.diff import DIFFConfig, DIFFEncoder
    from mmseg.models.backbones.diff.architectures import FAMILIES, build_random_components
    config = DIFFConfig.from_yaml(diff_config, **overrides)
    folder = Path(config.model_id)
    if family is None and (folder / 'unet' / 'config.json').is_file():
        logger.info('Architecture of %s', folder)
        parts = _components_on_meta(folder)
    else:
        family = family or _family_of_file(Path(diff_config)) or 'sd21'
        if family not in FAMILIES:
            raise ValueError(f'--family {family!r}: expected one of {sorted(FAMILIES)}')
        logger.info('Using the %s architecture (random weights, meta device)', family)
        parts = build_random_components(FAMILIES[family], device=torch.device('meta'))
    with torch.device('meta'):
        encoder = DIFFEncoder(config, parts)
    return encoder, parts


def diff_rows(diff_config: Path, overrides: dict,
              family: Optional[str] = None) -> Tuple[Rows, List[str]]:
    """Rows of (part, trainable, frozen) of a DIFF backbone and lines describing its widths."""
    encoder, parts = _diff_encoder_on_meta(diff_config, overrides, family)
    extractor = encoder.extractor
    towers = [('text_encoder', parts.text_encoder)]
    if parts.text_encoder_2 is not None:
        towers.append(('text_encoder_2', parts.text_encoder_2))
    rows = [('unet', *_count(extractor.unet)),
            ('vae (encoder; decoder dropped)', *_count(extractor.vae))]
    rows += [(f'{name} (construction only)', *_count(tower)) for name, tower in towers]
    for name, block in encoder.aggregation.blocks.items():
        rows.append((f'aggregation.{name}', *_count(block)))
    if hasattr(encoder.aggregation, 'mixing_weights'):
        rows.append(('aggregation.mixing_weights', *_count(encoder.aggregation.mixing_weights)))
    rows.append(('finecoder', *_count(encoder.finecoder)))
    widths = [
        'recorded feature channels (all saved steps): ' + ', '.join(
            f'stride {lv.stride}: {lv.channels:,} = {lv.num_steps} steps x '
            f'{lv.channels // lv.num_steps:,}'
            + ('' if lv.stride in encoder.recorded_strides else ' (hooked, not used)')
            for lv in extractor.levels),
        'backbone outputs: ' + ', '.join(
            f'stride {s}: {c}' for s, c in zip(encoder.out_strides, encoder.out_channels))]
    return rows, widths


def mit_rows(backbone: dict) -> Tuple[Rows, List[str]]:
    """Rows and widths of the MiT baseline's encoder (its folder's config, else MiT-B5)."""
    from transformers import SegformerConfig, SegformerModel
    folder = Path(backbone.get('pretrained', '')).expanduser()
    folder = folder if folder.is_absolute() else REPO_ROOT / folder
    if (folder / 'config.json').is_file():
        config = SegformerConfig.from_pretrained(str(folder))
    else:
        logger.info('%s not found: using the MiT-B5 architecture', folder)
        config = SegformerConfig(**MIT_B5)
    with torch.device('meta'):
        encoder = SegformerModel(config)
    strides, stride = [], 1
    for step in config.strides:
        stride *= step
        strides.append(stride)
    widths = ['backbone outputs: ' + ', '.join(
        f'stride {s}: {c}' for s, c in zip(strides, config.hidden_sizes))]
    return [('mit encoder (trained)', *_count(encoder))], widths


def count_parameters(diff_config: Path, overrides: dict, model_config: Optional[Path],
                     family: Optional[str] = None) -> Rows:
    """Rows of (part, trainable, frozen) for the backbone (and the decode head)."""
    rows, widths = diff_rows(diff_config, overrides, family)
    for line in widths:
        logger.info(line)
    if model_config is not None:
        rows.append(('decode_head', *_count(_build_head(model_config))))
    return rows


def _build_head(model_config) -> torch.nn.Module:
    """The decode head of an mmseg model config file, or of a ``decode_head`` dict."""
    from mmengine.config import Config

    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    head = model_config if isinstance(model_config, dict) else Config.fromfile(
        str(model_config)).model.decode_head
    with torch.device('meta'):
        return MODELS.build(copy.deepcopy(head))


def load_experiment_config(exp_id: Optional[int] = None, config: Optional[Path] = None):
    """The mmseg config of experiment ``exp_id`` (its first variant) or of a config file."""
    from mmengine.config import Config
    if exp_id is not None:
        from experiments import EXPERIMENTS, nest
        if exp_id not in EXPERIMENTS:
            raise ValueError(f'--exp {exp_id}: no such experiment; expected one of '
                             f'{sorted(EXPERIMENTS)}')
        experiment = EXPERIMENTS[exp_id]
        cfg = Config.fromfile(str(REPO_ROOT / experiment.base))
        if experiment.variants[0]:
            cfg.merge_from_dict(nest(experiment.variants[0]))
        return cfg
    return Config.fromfile(str(config))


def _diff_yaml(backbone: dict) -> Path:
    path = Path(backbone.get('diff_config', 'diff_config.yaml')).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def config_rows(cfg, family: Optional[str] = None) -> Tuple[Rows, List[str]]:
    """Rows and widths of an mmseg config's backbone and decode head."""
    backbone = cfg.model.backbone.to_dict()
    if backbone['type'] == 'DIFF':
        rows, widths = diff_rows(_diff_yaml(backbone), dict(backbone.get('overrides') or {}),
                                 family or family_of(backbone))
    elif backbone['type'] in MIT_TYPES:
        rows, widths = mit_rows(backbone)
    else:
        raise ValueError(f'model.backbone.type {backbone["type"]!r}: expected DIFF or MiT')
    rows.append(('decode_head', *_count(_build_head(cfg.model.decode_head.to_dict()))))
    return rows, widths


def family_of(backbone: dict) -> Optional[str]:
    """The architecture family a DIFF config file is named after (``configs/diff_configs/
    <family>.yaml``), used when its model folder is missing; None for other files."""
    return _family_of_file(_diff_yaml(backbone))


def _family_of_file(path: Path) -> Optional[str]:
    from mmseg.models.backbones.diff.architectures import FAMILIES
    return path.stem if path.stem in FAMILIES else None


def unet_usage(cfg, family: Optional[str] = None, size: int = 64,
               tiny_dir: Optional[Path] = None) -> Dict[str, Tuple[int, int]]:
    """UNet (calls, rows) of one training step and of one evaluation image, batch 1.

    Measured with a forward pre-hook on the UNet of the config's segmentor built on the tiny
    model of ``family`` (default: the family the config's DIFF file is named after, else SD
    2.1; narrow trainable widths: the counts do not depend on them). The
    label map holds every class of ``label_prompts``. ``tiny_dir``: an existing tiny folder
    to use instead of writing one.
    """
    from mmengine.structures import PixelData

    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from tools.make_tiny_sd import make_tiny_sd
    model_cfg = cfg.model.to_dict()
    backbone = model_cfg['backbone']
    # The counts depend on the config, not on the widths; the family's tiny model has the
    # layers that the config's hooked-layer lists name.
    family = family or family_of(backbone) or 'sd21'
    with tempfile.TemporaryDirectory() as scratch:
        reuse = REPO_ROOT / 'checkpoints' / 'tiny-sd21'
        tiny = tiny_dir or make_tiny_sd(Path(scratch) / family, seed=0, family=family,
                                        vae_from=reuse)
        backbone['overrides'] = dict(backbone.get('overrides') or {}, model_id=str(tiny),
                                     projection_channels=[64, 128, 128], stride4_channels=32)
        model_cfg['decode_head'].update(in_channels=[32, 64, 128, 128], channels=32)
        model_cfg['decode_head']['decoder_params']['embed_dims'] = 32
        model = MODELS.build(model_cfg)
    unet = model.backbone.encoder.extractor.unet
    counts = [0, 0]

    def count(module, args, kwargs):
        sample = args[0] if args else kwargs['sample']
        counts[0] += 1
        counts[1] += sample.shape[0]
    handle = unet.register_forward_pre_hook(count, with_kwargs=True)
    classes = sorted(model.backbone.encoder.config.label_prompts)
    label = torch.full((1, size, size), 255, dtype=torch.long)
    for k, c in enumerate(classes):  # one horizontal band per prompted class
        label[:, k * size // len(classes):(k + 1) * size // len(classes)] = c
    sample = SegDataSample(metainfo=dict(img_path='usage.png', img_shape=(size, size),
                                         ori_shape=(size, size), pad_shape=(size, size)))
    sample.gt_sem_seg = PixelData(data=label)
    inputs = torch.zeros(1, 3, size, size)
    usage = {}
    try:
        with torch.no_grad():
            model.train()
            model.loss(inputs, [sample])
            usage['training step'] = tuple(counts)
            counts[:] = [0, 0]
            model.eval()
            model.encode_decode(inputs)
            usage['evaluation image'] = tuple(counts)
    finally:
        handle.remove()
    return usage


def format_table(rows: Sequence[Tuple[str, int, int]]) -> str:
    """A plain-text table with millions and a total line."""
    lines = [f'{"part":<40} {"trainable":>14} {"frozen":>16}']
    for name, trainable, frozen in rows:
        lines.append(f'{name:<40} {trainable:>14,} {frozen:>16,}')
    trainable = sum(r[1] for r in rows)
    frozen = sum(r[2] for r in rows)
    lines.append(f'{"total":<40} {trainable:>14,} {frozen:>16,}')
    lines.append(f'{"total (millions)":<40} {trainable / 1e6:>14.2f} {frozen / 1e6:>16.2f}')
    return '\n'.join(lines)


def _report_config(cfg, family: Optional[str], usage: bool) -> str:
    rows, widths = config_rows(cfg, family)
    lines = [format_table(rows), *widths]
    if usage and cfg.model.backbone.type == 'DIFF':
        ipkl = (cfg.model.get('train_cfg') or {}).get('ipkl', {}).get('enabled', False)
        lines.append(f'UNet per step (tiny model, batch 1, IPKL {"on" if ipkl else "off"}, '
                     'every prompted class present):')
        for phase, (calls, unet_rows) in unet_usage(cfg).items():
            lines.append(f'  {phase}: {calls} calls, {unet_rows} rows')
    elif usage:
        lines.append('UNet per step: none (not a diffusion backbone)')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--exp', type=int, help='an experiment of experiments.py')
    source.add_argument('--config', type=Path, help='an mmseg config file')
    source.add_argument('--diff-config', type=Path, default=REPO_ROOT / 'diff_config.yaml')
    parser.add_argument('--model-config', type=Path,
                        default=REPO_ROOT / 'configs/_base_/models/daformer_sepaspp_diff.py',
                        help="mmseg model config whose decode_head is counted ('' to skip)")
    parser.add_argument('--family', help='count this Stable Diffusion architecture '
                        '(sd21, sd21-base, sd20, sd15, sdxl) instead of the model_id folder')
    parser.add_argument('--no-usage', action='store_true',
                        help='with --exp/--config: skip the UNet calls/rows measurement')
    parser.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE',
                        help='DIFF config overrides, values in YAML syntax')
    args = parser.parse_args(argv)
    os.environ.setdefault('HF_HUB_DISABLE_PROGRESS_BARS', '1')
    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    logger.setLevel(logging.INFO)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split('=', 1) for item in args.set)}
    if args.exp is not None or args.config is not None:
        cfg = load_experiment_config(args.exp, args.config)
        if overrides and cfg.model.backbone.type == 'DIFF':
            cfg.model.backbone.overrides = dict(cfg.model.backbone.get('overrides') or {},
                                                **overrides)
        print(_report_config(cfg, args.family, not args.no_usage))
        return 0
    model_config = args.model_config if str(args.model_config) else None
    rows, widths = diff_rows(args.diff_config, overrides, args.family)
    if model_config is not None:
        rows.append(('decode_head', *_count(_build_head(model_config))))
    print('\n'.join([format_table(rows), *widths]))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
