"""Stable Diffusion architectures, built with random weights (nothing downloaded).

For measurements and shape checks only (the backbone itself never reads this module: it
derives every width and stride from the loaded UNet and VAE). :func:`build_random_components`
constructs the real diffusers / transformers classes from the settings of a published
model's config.json files: :data:`SD21` (the paper's model, 768 px, v-prediction) and, in
:data:`FAMILIES`, SD 1.5, SD 2.0, SD 2.1-base and SD XL (base 1.0). There is no real CLIP
BPE vocabulary here: the tokenizer is a byte-level one that tokenizes per character (514
entries), enough to tell prompts apart.
"""
import copy
from typing import Any, Dict, Optional

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from .components import SDComponents

_UNET_BLOCKS = dict(
    down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
    up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3,
    layers_per_block=2, use_linear_projection=True, upcast_attention=True,
    in_channels=4, out_channels=4)
_VAE_BLOCKS = dict(down_block_types=('DownEncoderBlock2D',) * 4,
                   up_block_types=('UpDecoderBlock2D',) * 4, latent_channels=4,
                   scaling_factor=0.18215)
# SD 2.1 (768-v) ships this scheduler.
_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                  beta_schedule='scaled_linear', prediction_type='v_prediction',
                  clip_sample=False, set_alpha_to_one=False, steps_offset=1)

SD21: Dict[str, Dict[str, Any]] = dict(
    unet=dict(_UNET_BLOCKS, sample_size=96, block_out_channels=(320, 640, 1280, 1280),
              attention_head_dim=(5, 10, 20, 20), cross_attention_dim=1024, norm_num_groups=32),
    vae=dict(_VAE_BLOCKS, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
             norm_num_groups=32, sample_size=768),
    text_encoder=dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                      num_hidden_layers=23, vocab_size=49408, max_position_embeddings=77,
                      hidden_act='gelu', projection_dim=512),
    scheduler=_SCHEDULER)

# SD 2.1-base (512 px): SD 2.1's networks, epsilon prediction; attention is not upcast (only
# the 768-v model's config sets upcast_attention, against fp16 overflow).
SD21_BASE: Dict[str, Dict[str, Any]] = dict(
    SD21, unet=dict(SD21['unet'], sample_size=64, upcast_attention=False),
    vae=dict(SD21['vae'], sample_size=512),
    scheduler=dict(_SCHEDULER, prediction_type='epsilon'))
# SD 2.0 (768-v): SD 2.1's networks and v-prediction, attention not upcast.
SD20: Dict[str, Dict[str, Any]] = dict(
    SD21, unet=dict(SD21['unet'], upcast_attention=False))
# SD 1.5 (512 px, epsilon): CLIP ViT-L/14 text tower (768 wide, 12 layers, quick GELU),
# cross-attention width 768, 8 attention heads in every block, no linear projection in the
# transformer blocks. Its scheduler is a PNDM one with the same noise schedule (the DDIM
# settings below give the same alphas).
SD15: Dict[str, Dict[str, Any]] = dict(
    unet=dict(_UNET_BLOCKS, sample_size=64, block_out_channels=(320, 640, 1280, 1280),
              attention_head_dim=8, cross_attention_dim=768, norm_num_groups=32,
              use_linear_projection=False, upcast_attention=False),
    vae=dict(SD21['vae'], sample_size=512),
    text_encoder=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                      num_hidden_layers=12, vocab_size=49408, max_position_embeddings=77,
                      hidden_act='quick_gelu', projection_dim=768),
    scheduler=dict(_SCHEDULER, prediction_type='epsilon'))

# SD XL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0's config.json files; 1024 px,
# epsilon). Three levels: widths 320/640/1280, cross-attention in the two coarser ones only,
# with 2 and 10 transformer blocks per attention (transformer_layers_per_block's first entry
# belongs to the plain finest level and is unused), 5/10/20 heads of 64, cross-attention
# 2048 wide = the two text towers' widths 768 + 1280. The added
# embedding (addition_embed_type text_time) reads the 1280-wide pooled embedding and six time
# ids, each projected to 256 sinusoidal features: 1280 + 6 x 256 = 2816 inputs. Its VAE has
# SD's architecture with another scaling factor and force_upcast (it overflows in float16).
# Text towers: CLIP ViT-L/14 (as SD 1.5) and OpenCLIP ViT-bigG/14 with its projection.
# Its scheduler is an Euler one with the same noise schedule (DDIM settings below: same alphas).
SDXL: Dict[str, Dict[str, Any]] = dict(
    unet=dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
              block_out_channels=(320, 640, 1280), norm_num_groups=32,
              down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'),
              up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'),
              attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10),
              cross_attention_dim=2048, use_linear_projection=True,
              addition_embed_type='text_time', addition_embed_type_num_heads=64,
              addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816),
    vae=dict(SD21['vae'], sample_size=1024, scaling_factor=0.13025, force_upcast=True),
    text_encoder=SD15['text_encoder'],
    text_encoder_2=dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
                        num_hidden_layers=32, vocab_size=49408, max_position_embeddings=77,
                        hidden_act='gelu', projection_dim=1280),
    scheduler=dict(_SCHEDULER, prediction_type='epsilon'))

# Architectures by family name (the names of tools/make_tiny_sd.py --family).
FAMILIES: Dict[str, Dict[str, Dict[str, Any]]] = {
    'sd15': SD15, 'sd20': SD20, 'sd21-base': SD21_BASE, 'sd21': SD21, 'sdxl': SDXL}

def byte_level_vocabulary() -> Dict[str, int]:
    """256 byte-level characters, their ``</w>`` forms and the two CLIP specials (514 ids)."""
    # Byte-level BPE maps printable latin-1 bytes to themselves and the rest to code points
    # from 256 upwards, so every byte has a visible character.
    printable = set(range(ord('!'), ord('~') + 1)) | set(range(0xA1, 0xAD)) | set(
        range(0xAE, 0x100))
    characters, extra = [], 0
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(256 + extra))
            extra += 1
    tokens = characters + [c + '</w>' for c in characters] + ['<|startoftext|>', '<|endoftext|>']
    return {token: index for index, token in enumerate(tokens)}


def byte_level_tokenizer(max_length: int = 77) -> CLIPTokenizer:
    """A CLIP tokenizer over :func:`byte_level_vocabulary` with no merges (per character)."""
    return CLIPTokenizer(byte_level_vocabulary(), [], model_max_length=max_length)


def build_random_components(architecture: Dict[str, Dict[str, Any]], seed: int = 0,
                            device: Optional[torch.device] = None) -> SDComponents:
    """Construct unet, vae, text encoder, tokenizer and scheduler with seeded random weights.

    Args:
        architecture: :data:`SD21` or a dict of the same form; a ``text_encoder_2`` entry
            adds a second text tower (a CLIP text model with projection).
        seed: Each network is built after ``torch.manual_seed(seed + k)``; the caller's global
            RNG state is restored afterwards.
        device: Build directly on this device (``torch.device('meta')`` builds shapes only).
    """
    vocabulary = byte_level_vocabulary()
    specials = dict(bos_token_id=vocabulary['<|startoftext|>'],
                    eos_token_id=vocabulary['<|endoftext|>'],
                    pad_token_id=vocabulary['<|endoftext|>'])
    text_settings = dict(architecture['text_encoder'], **specials)
    builders = [lambda: UNet2DConditionModel(**copy.deepcopy(architecture['unet'])),
                lambda: AutoencoderKL(**copy.deepcopy(architecture['vae'])),
                lambda: CLIPTextModel(CLIPTextConfig(**text_settings))]
    second = architecture.get('text_encoder_2')
    if second is not None:
        builders.append(lambda: CLIPTextModelWithProjection(
            CLIPTextConfig(**dict(second, **specials))))
    networks = []
    with torch.random.fork_rng(devices=[]), torch.device(device or 'cpu'):
        for offset, build in enumerate(builders):
            torch.manual_seed(seed + offset)
            networks.append(build().eval())
    unet, vae, text_encoder = networks[:3]
    length = architecture['text_encoder']['max_position_embeddings']
    towers = {} if second is None else dict(
        text_encoder_2=networks[3],
        tokenizer_2=byte_level_tokenizer(second['max_position_embeddings']))
    return SDComponents(unet=unet, vae=vae, text_encoder=text_encoder,
                        tokenizer=byte_level_tokenizer(length),
                        scheduler=DDIMScheduler(**architecture['scheduler']), **towers)
