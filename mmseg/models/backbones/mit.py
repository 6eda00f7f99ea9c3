"""mmseg adapter of the Mix Transformer (MiT, SegFormer's encoder) from ``transformers``.

The standard-backbone baseline of DAFormer (a MiT-B5 encoder with the DAFormer head): the
encoder is transformers' ``SegformerModel``, loaded with ImageNet weights from a local folder
in the transformers format (``nvidia/mit-b5``), and trained end to end, unlike DIFF.
"""
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS

REPO_ROOT = Path(__file__).resolve().parents[3]
HUB_ID = 'nvidia/mit-b5'


class MiTWeightsNotFoundError(FileNotFoundError):
    """The MiT folder named by ``pretrained`` is missing or incomplete."""


def _how_to_get(folder: Path) -> str:
    return (f'Download the ImageNet-pretrained {HUB_ID} encoder once (transformers format: '
            f'config.json and model.safetensors), for example with\n'
            f'  hf download {HUB_ID} --local-dir {folder}\n'
            f'or point the backbone\'s `pretrained` at the folder where it already is.')


@MODELS.register_module(name=['MiT', 'MixVisionTransformer'])
class MiT(BaseModule):
    """SegFormer's Mix Transformer encoder: four feature maps at strides 4, 8, 16 and 32.

    Inputs arrive as RGB in [-1, 1] from the project's data preprocessor (the range DIFF's VAE
    expects, shared by every backbone so the pipelines, DACS mixing and padding stay the same);
    the adapter maps them back to [0, 255] and applies the ImageNet normalisation the encoder
    was pretrained with (``mean``/``std``, from the config).

    Args:
        pretrained: Local transformers-format folder (``config.json`` + weights) of a
            SegFormer encoder or image classifier; a relative path is resolved against the
            repository root. Every encoder weight must be in it (a missing one is an error).
        mean: Per-channel RGB mean in [0, 255] units.
        std: Per-channel RGB standard deviation in [0, 255] units.
        drop_path_rate: Stochastic depth of the encoder (replaces the folder's value).
        init_cfg: Must be None: the weights come from ``pretrained``.
    """

    def __init__(self, pretrained: Union[str, Path], mean: Sequence[float],
                 std: Sequence[float], drop_path_rate: float = 0.1,
                 init_cfg: Optional[dict] = None):
        if init_cfg is not None:
            raise ValueError('MiT: init_cfg is not supported; the ImageNet weights come from '
                             '`pretrained` (load trained weights with load_from)')
        super().__init__(init_cfg=None)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f'MiT: mean and std must be 3 RGB values (std > 0) in [0, 255] '
                             f'units, got mean={list(mean)}, std={list(std)}')
        self.encoder = _load_encoder(_resolve(pretrained), drop_path_rate)
        config = self.encoder.config
        self.out_channels: Tuple[int, ...] = tuple(config.hidden_sizes)
        strides, stride = [], 1
        for step in config.strides:
            stride *= step
            strides.append(stride)
        self.out_strides: Tuple[int, ...] = tuple(strides)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)

    def init_weights(self) -> None:
        """No-op: the weights were loaded from ``pretrained`` on construction.

        (mmengine would otherwise call transformers' own ``init_weights`` on the encoder.)
        """

    def normalise(self, inputs: Tensor) -> Tensor:
        """[-1, 1] RGB -> ImageNet-normalised RGB."""
        return ((inputs + 1) * 127.5 - self.mean) / self.std

    def forward(self, inputs: Tensor, label_map: Optional[Tensor] = None,
                generator: Optional[Sequence[torch.Generator]] = None) -> Tuple[Tensor, ...]:
        """Backbone protocol: (B, 3, H, W) RGB in [-1, 1] -> 4 maps, fine to coarse.

        ``label_map`` and ``generator`` (DIFF's label steering and noise) are accepted and
        ignored: the encoder is deterministic and label-free.
        """
        output = self.encoder(pixel_values=self.normalise(inputs), output_hidden_states=True,
                              return_dict=True)
        return tuple(output.hidden_states)


def _resolve(pretrained: Union[str, Path]) -> Path:
    folder = Path(pretrained).expanduser()
    return folder if folder.is_absolute() else REPO_ROOT / folder


def _load_encoder(folder: Path, drop_path_rate: float):
    """``SegformerModel`` from ``folder`` (offline); every encoder weight must be present."""
    from transformers import SegformerModel
    if not (folder / 'config.json').is_file():
        raise MiTWeightsNotFoundError(f'MiT weights not found at {folder} (no config.json).\n'
                                      + _how_to_get(folder))
    try:
        encoder, info = SegformerModel.from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True,
            drop_path_rate=drop_path_rate)
    except (OSError, ValueError) as error:
        raise MiTWeightsNotFoundError(f'Could not load the MiT encoder from {folder}: '
                                      f'{error}\n' + _how_to_get(folder)) from error
    missing = sorted(info['missing_keys']) + sorted(info['mismatched_keys'])
    if missing:
        raise MiTWeightsNotFoundError(
            f'{folder} does not hold a complete MiT encoder: {len(missing)} weight(s) missing '
            f'or of the wrong shape (first: {missing[:3]}); it would train from random '
            f'weights.\n' + _how_to_get(folder))
    return encoder
