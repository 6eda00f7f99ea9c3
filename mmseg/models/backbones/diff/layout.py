"""Which UNet layers are recorded, at which stride, and how their channels are laid out.

All sizes are read from the UNet and the VAE (as detectron2's ``output_shape()`` does), so the
same code serves every Stable Diffusion family and the tiny test models.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from torch import nn

from .config import ConfigError

RESNET, TRANSFORMER = 'resnet', 'transformer'


@dataclass(frozen=True)
class Layer:
    """One recorded layer: ``up_blocks[block].resnets[index].conv2`` or the first transformer
    block of ``up_blocks[block].attentions[index]``."""

    kind: str
    block: int
    index: int
    channels: int

    @property
    def key(self) -> Tuple[str, int, int]:
        return self.kind, self.block, self.index

    def module(self, unet: nn.Module) -> nn.Module:
        """The sub-module whose output is recorded."""
        block = unet.up_blocks[self.block]
        if self.kind == RESNET:
            return block.resnets[self.index].conv2
        return block.attentions[self.index].transformer_blocks[0]


@dataclass(frozen=True)
class Level:
    """The recorded layers of one up block, concatenated into one feature map.

    Channel layout (the release's): for each layer in order (ResNets first, then transformer
    blocks, each in config order), the layer's C channels at every saved step, in the order
    of ``saved_steps``.
    """

    block: int
    stride: int  # relative to the image
    scale: int  # relative to the latent
    layers: Tuple[Layer, ...]
    num_steps: int  # number of saved steps

    @property
    def channels(self) -> int:
        return self.num_steps * sum(layer.channels for layer in self.layers)

    def offset(self, layer_position: int, step_position: int) -> int:
        """First channel of layer ``layer_position`` at saved step ``step_position``."""
        before = sum(layer.channels for layer in self.layers[:layer_position])
        return self.num_steps * before + step_position * self.layers[layer_position].channels


def latent_factor(vae: nn.Module) -> int:
    """Image-to-latent downsampling of the VAE (8 for Stable Diffusion)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def up_block_scales(unet: nn.Module) -> List[int]:
    """For each up block, the downsampling of its resolution relative to the latent."""
    scales = []
    for i in range(len(unet.up_blocks)):
        upsampling = sum(1 for block in unet.up_blocks[i:] if block.upsamplers is not None)
        scales.append(2 ** upsampling)
    return scales


def size_multiple(unet: nn.Module, vae: nn.Module) -> int:
    """Image sides must be multiples of this (64 for Stable Diffusion)."""
    downsampling = sum(1 for block in unet.down_blocks if block.downsamplers is not None)
    return latent_factor(vae) * 2 ** downsampling


def describe_levels(unet: nn.Module, vae: nn.Module, resnet_indices: Sequence[Sequence[int]],
                    transformer_indices: Sequence[Sequence[int]],
                    num_steps: int) -> List[Level]:
    """The recorded levels, fine to coarse.

    Raises:
        ConfigError: an index names a layer the UNet does not have.
    """
    layers = [_layer(unet, RESNET, i, j) for i, j in resnet_indices]
    layers += [_layer(unet, TRANSFORMER, i, j) for i, j in transformer_indices]
    scales, factor = up_block_scales(unet), latent_factor(vae)
    levels = []
    for block in sorted({layer.block for layer in layers}, key=lambda b: scales[b]):
        in_block = [layer for layer in layers if layer.block == block]
        ordered = tuple(layer for layer in in_block if layer.kind == RESNET) + tuple(
            layer for layer in in_block if layer.kind == TRANSFORMER)
        levels.append(Level(block, factor * scales[block], scales[block], ordered, num_steps))
    if len({level.stride for level in levels}) != len(levels):
        raise ConfigError('DIFF config: two hooked up blocks have the same resolution')
    return levels


def _layer(unet: nn.Module, kind: str, block: int, index: int) -> Layer:
    key = 'resnet_indices' if kind == RESNET else 'transformer_indices'
    blocks = unet.up_blocks
    if block >= len(blocks):
        raise ConfigError(f'DIFF config key {key!r}: [{block}, {index}] names up block {block}, '
                          f'but the UNet has {len(blocks)} up blocks')
    if kind == RESNET:
        children = blocks[block].resnets
    else:
        children = getattr(blocks[block], 'attentions', None)
        if children is None:
            raise ConfigError(f'DIFF config key {key!r}: [{block}, {index}]: up block {block} '
                              f'({type(blocks[block]).__name__}) has no attentions')
    if index >= len(children):
        raise ConfigError(f'DIFF config key {key!r}: [{block}, {index}]: up block {block} has '
                          f'{len(children)} {kind} layers')
    if kind == RESNET:
        channels = children[index].conv2.out_channels
    else:
        channels = children[index].transformer_blocks[0].norm1.normalized_shape[0]
    return Layer(kind, block, index, channels)
