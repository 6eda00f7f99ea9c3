"""Loading the five Stable Diffusion components from a local diffusers-format folder."""
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from .config import DIFFConfig

logger = logging.getLogger(__name__)

COMPONENT_NAMES = ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler')
HUB_ID = 'stabilityai/stable-diffusion-2-1'


@dataclass
class SDComponents:
    """The parts of a Stable Diffusion model that DIFF uses (diffusers / transformers objects)."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: Optional[CLIPTextModel]
    tokenizer: Any  # a CLIPTokenizer (or any tokenizer with the same call signature)
    scheduler: DDIMScheduler


class WeightsNotFoundError(FileNotFoundError):
    """The Stable Diffusion folder named by ``model_id`` is missing or incomplete."""


def _how_to_get(folder: Path) -> str:
    return (f'Download {HUB_ID} once, in diffusers format (the folder with unet/, vae/, '
            f'text_encoder/, tokenizer/, scheduler/), for example with\n'
            f'  huggingface-cli download {HUB_ID} --local-dir {folder}\n'
            f'and put it at {folder} (the model_id in diff_config.yaml, resolved against '
            f'the YAML file), or point model_id at the folder where it already is.')


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
    loaded = {}
    for name, cls in loaders.items():
        try:
            loaded[name] = cls.from_pretrained(str(folder), subfolder=name, local_files_only=True)
        except (OSError, ValueError, EnvironmentError) as error:
            raise WeightsNotFoundError(f'Could not load {name} from {folder / name}: {error}\n'
                                       + _how_to_get(folder)) from error
    logger.info('Loaded Stable Diffusion components from %s', folder)
    return SDComponents(**loaded)
