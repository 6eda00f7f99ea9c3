"""Count the trainable and frozen parameters of the DIFF model, part by part.

Nothing is downloaded and no weight is loaded: the networks are built on PyTorch's ``meta``
device (shapes only) from the architecture of the ``model_id`` folder named in the DIFF config,
or, when that folder does not exist, from the Stable Diffusion 2.1 architecture itself.

Usage::

    python tools/get_param_count.py [--diff-config diff_config.yaml] [--straightforward]
        [--model-config configs/_base_/models/daformer_sepaspp_diff.py] [--set key=value ...]
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if __name__ == '__main__':
    sys.path.insert(0, str(REPO_ROOT))
logger = logging.getLogger(__name__)


def _count(module: Optional[torch.nn.Module]) -> Tuple[int, int]:
    if module is None:
        return 0, 0
    params = list(module.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return trainable, sum(p.numel() for p in params) - trainable


def _components_on_meta(folder: Path):
    """SD components of ``folder`` built from its config files only (no weights read)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from mmseg.models.backbones.diff import SDComponents
    with torch.device('meta'):
        unet = UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(folder, subfolder='unet'))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder, subfolder='vae'))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / 'text_encoder'))
    return SDComponents(unet, vae, text_encoder,
                        CLIPTokenizer.from_pretrained(folder, subfolder='tokenizer'),
                        DDIMScheduler.from_pretrained(folder, subfolder='scheduler'))


def count_parameters(diff_config: Path, overrides: dict,
                     model_config: Optional[Path]) -> List[Tuple[str, int, int]]:
    """Rows of (part, trainable, frozen) for the backbone (and the decode head)."""
    from mmseg.models.backbones.diff import DIFFConfig, DIFFEncoder
    from mmseg.models.backbones.diff.architectures import SD21, build_random_components
    config = DIFFConfig.from_yaml(diff_config, **overrides)
    folder = Path(config.model_id)
    if (folder / 'unet' / 'config.json').is_file():
        logger.info('Architecture of %s', folder)
        parts = _components_on_meta(folder)
    else:
        logger.info('%s not found: using the Stable Diffusion 2.1 architecture', folder)
        parts = build_random_components(SD21, device=torch.device('meta'))
    text_encoder = parts.text_encoder
    with torch.device('meta'):
        encoder = DIFFEncoder(config, parts)
    extractor = encoder.extractor
    rows = [('unet', *_count(extractor.unet)),
            ('vae (encoder; decoder dropped)', *_count(extractor.vae)),
            ('text_encoder' + (' (construction only)' if config.optimize else ''),
             *_count(text_encoder))]
    for name, block in encoder.aggregation.blocks.items():
        rows.append((f'aggregation.{name}', *_count(block)))
    if hasattr(encoder.aggregation, 'mixing_weights'):
        rows.append(('aggregation.mixing_weights', *_count(encoder.aggregation.mixing_weights)))
    rows.append(('finecoder', *_count(encoder.finecoder)))
    if model_config is not None:
        rows.append(('decode_head', *_count(_build_head(model_config))))
    widths = ', '.join(f'stride {lv.stride}: {lv.channels:,}' for lv in extractor.levels)
    logger.info('Concatenated feature channels: %s', widths)
    return rows


def _build_head(model_config: Path) -> torch.nn.Module:
    from mmengine.config import Config

    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    head = Config.fromfile(str(model_config)).model.decode_head
    with torch.device('meta'):
        return MODELS.build(head)


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--diff-config', type=Path, default=REPO_ROOT / 'diff_config.yaml')
    parser.add_argument('--model-config', type=Path,
                        default=REPO_ROOT / 'configs/_base_/models/daformer_sepaspp_diff.py',
                        help="mmseg model config whose decode_head is counted ('' to skip)")
    parser.add_argument('--straightforward', action='store_true',
                        help='count the release-like path (with the stride-64 branch)')
    parser.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE',
                        help='DIFF config overrides, values in YAML syntax')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    overrides = {k: yaml.safe_load(v) for k, v in (item.split('=', 1) for item in args.set)}
    if args.straightforward:
        overrides['optimize'] = False
    model_config = args.model_config if str(args.model_config) else None
    print(format_table(count_parameters(args.diff_config, overrides, model_config)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
