"""Write a tiny, seeded, Stable-Diffusion-shaped model folder in the diffusers format.

The folder has the five components SD ships (``unet``, ``vae``, ``text_encoder``,
``tokenizer``, ``scheduler``) with the same block structure as SD 2.1 (4 levels, 3 ResNets per
up block, cross-attention in up blocks 1-3, linear projection, an 8x VAE, a v-prediction DDIM
scheduler) but channel widths of 8-32, so tests, the demo and CI load it through the real
``from_pretrained`` code in well under a second. Nothing is downloaded.

``--family`` picks another Stable Diffusion family's differences at the same tiny scale
(:data:`FAMILIES`): ``sd15`` (narrower text tower and cross-attention, quick GELU, a fixed
head count, no linear projection, epsilon prediction, a PNDM scheduler), ``sd21-base``
(epsilon, no attention upcast), ``sd20`` (v-prediction, no attention upcast), ``sdxl`` (SD XL's
three levels with cross-attention in the two coarser ones and several transformer blocks per
attention, a second text tower with projection in ``text_encoder_2/`` and ``tokenizer_2/``,
the added text-time embedding of pooled text and six size/crop time ids, epsilon prediction,
an Euler scheduler). The default ``sd21`` output is unchanged bit for bit.

Usage::

    python tools/make_tiny_sd.py checkpoints/tiny-sd21 [--seed 0] [--family sd21]
"""
import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from mmseg.utils import apply_umask_permissions

logger = logging.getLogger(__name__)

COMPONENTS = ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler')
# The index is written last; its presence marks a complete folder.
INDEX_FILE = 'model_index.json'
# Adam steps that make the random VAE encoder's latents informative (see _calibrate_vae_encoder).
VAE_FIT_STEPS = 300
# SD's 0.18215 brings its VAE's raw latents (std about 5.5) to unit scale; the calibrated tiny
# encoder's raw latents already have a std of about 1, so they are used as they are. Smaller
# latents would drown in the inversion's noise.
VAE_SCALING_FACTOR = 1.0

# The scheduler SD 2.1 (768-v) ships; the noise schedule is shared by all families.
_SD21_SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear',
    prediction_type='v_prediction', clip_sample=False, set_alpha_to_one=False, steps_offset=1)
# Per family: UNet and text-tower settings that differ from the tiny SD 2.1 ones, and the
# scheduler (class name, settings), mirroring each family's published config.json files at
# tiny widths (real sizes: mmseg/models/backbones/diff/architectures.py).
FAMILIES: Dict[str, Dict[str, Any]] = {
    'sd21': dict(unet={}, text_encoder={}, scheduler=('DDIMScheduler', _SD21_SCHEDULER)),
    'sd21-base': dict(unet=dict(upcast_attention=False), text_encoder={}, scheduler=(
        'DDIMScheduler', dict(_SD21_SCHEDULER, prediction_type='epsilon'))),
    'sd20': dict(unet=dict(upcast_attention=False), text_encoder={},
                 scheduler=('DDIMScheduler', _SD21_SCHEDULER)),
    # SD 1.5: a 768-wide CLIP ViT-L tower (here 24 against SD 2.x's 32), cross-attention of
    # that width, attention_head_dim a single number (8 heads in SD 1.5), no linear projection.
    'sd15': dict(
        unet=dict(attention_head_dim=2, use_linear_projection=False, upcast_attention=False,
                  cross_attention_dim=24),
        text_encoder=dict(hidden_size=24, projection_dim=24, hidden_act='quick_gelu'),
        scheduler=('PNDMScheduler', dict(
            num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
            beta_schedule='scaled_linear', prediction_type='epsilon', skip_prk_steps=True,
            set_alpha_to_one=False, steps_offset=1))),
    # SD XL: 3 levels (plain finest, then 2 and 10 transformer blocks per attention in SD XL,
    # 2 and 3 here), cross-attention as wide as both text towers together (16 + 32 here,
    # 768 + 1280 in SD XL), the text-time added embedding: pooled width + 6 time ids x
    # addition_time_embed_dim (32 + 6 x 8 here, 1280 + 6 x 256 in SD XL). Tower 1 is CLIP
    # ViT-L-like (quick GELU), tower 2 OpenCLIP-bigG-like (GELU, projection, '!' padding).
    'sdxl': dict(
        unet=dict(block_out_channels=(8, 16, 32),
                  down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D',
                                    'CrossAttnDownBlock2D'),
                  up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'),
                  attention_head_dim=(2, 4, 8), transformer_layers_per_block=(1, 2, 3),
                  upcast_attention=False, cross_attention_dim=48,
                  addition_embed_type='text_time', addition_time_embed_dim=8,
                  projection_class_embeddings_input_dim=80),
        text_encoder=dict(hidden_size=16, projection_dim=16, hidden_act='quick_gelu'),
        text_encoder_2=dict(hidden_size=32, projection_dim=32, hidden_act='gelu',
                            pad_token='!'),
        scheduler=('EulerDiscreteScheduler', dict(
            num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
            beta_schedule='scaled_linear', prediction_type='epsilon', steps_offset=1,
            timestep_spacing='leading', interpolation_type='linear',
            use_karras_sigmas=False)),
        pipeline='StableDiffusionXLPipeline'),
}
DEFAULT_FAMILY = 'sd21'


def _byte_level_vocabulary() -> dict:
    """A CLIP vocabulary of the 256 byte-level characters, their ``</w>`` forms and 2 specials.

    With an empty merges file CLIP's BPE then tokenizes character by character, so different
    prompts get different ids (docs/pitfalls.md #8). 514 entries.
    """
    # The printable-byte mapping used by byte-level BPE: printable latin-1 bytes map to
    # themselves, the others to code points from 256 upwards.
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('\xa1'), ord('\xac') + 1))
                 + list(range(ord('\xae'), ord('\xff') + 1)))
    characters, extra = [], 0
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(256 + extra))
            extra += 1
    tokens = characters + [c + '</w>' for c in characters] + ['<|startoftext|>', '<|endoftext|>']
    return {token: index for index, token in enumerate(tokens)}


def _write_unet(path: Path, family: str = DEFAULT_FAMILY) -> None:
    from diffusers import UNet2DConditionModel
    # SD 2.1's layout with tiny widths (docs/pitfalls.md #9); norm groups must divide 8.
    settings = dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(8, 16, 32, 32), norm_num_groups=8,
        down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
        up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3,
        attention_head_dim=(2, 4, 8, 8), use_linear_projection=True,
        upcast_attention=True, cross_attention_dim=32,
    )
    settings.update(FAMILIES[family]['unet'])
    UNet2DConditionModel(**settings).save_pretrained(path)


def _smooth_images(generator: torch.Generator, batch: int = 8, size: int = 64) -> torch.Tensor:
    """Random RGB images in [-1, 1] with structure at 4, 8 and 16 pixels (a few scales)."""
    images = torch.zeros(batch, 3, size, size)
    for cells in (4, 8, 16):
        noise = torch.rand(batch, 3, cells, cells, generator=generator) * 2 - 1
        images += torch.nn.functional.interpolate(noise, size=(size, size), mode='bilinear',
                                                  align_corners=False)
    return images.clamp(-1, 1)


def _calibrate_vae_encoder(vae, steps: int = VAE_FIT_STEPS) -> None:
    """Fit the encoder so that its latents carry the image, as a trained VAE's do.

    With random weights the posterior's sampling noise (std about 1) swamps its mean (std
    about 0.2), so the features a random tiny VAE hands to the UNet hold almost no trace of
    the image and nothing downstream can learn from them. A few hundred Adam steps on smooth
    random images make the mean an 8x8-pooled colour code (RGB and grey, x2) and pull the
    log-variance to -10; a few seconds on one CPU thread, deterministic for a given seed.
    """
    generator = torch.Generator().manual_seed(torch.initial_seed())
    encoder = [vae.encoder, vae.quant_conv]
    parameters = [p for module in encoder for p in module.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same weights on every machine, whatever its core count
    try:
        for _ in range(steps):
            images = _smooth_images(generator)
            pooled = torch.nn.functional.avg_pool2d(images, 8)
            target = 2 * torch.cat([pooled, pooled.mean(1, keepdim=True)], dim=1)
            moments = vae.quant_conv(vae.encoder(images))
            mean, logvar = moments.chunk(2, dim=1)
            loss = (mean - target).pow(2).mean() + 0.01 * (logvar + 10).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    logger.info('Calibrated the tiny VAE encoder: final loss %.4f', loss.item())


# Calibrated VAE weights per seed, kept for the life of the process: writing the same seed
# again (tests, other families) reuses them instead of repeating the calibration.
_CALIBRATED_VAES: Dict[int, Dict[str, torch.Tensor]] = {}


def _write_vae(path: Path, seed: int) -> None:
    from diffusers import AutoencoderKL
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), norm_num_groups=8, latent_channels=4,
        down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4,
        layers_per_block=1, sample_size=64, scaling_factor=VAE_SCALING_FACTOR,
    )
    if seed in _CALIBRATED_VAES:
        vae.load_state_dict(_CALIBRATED_VAES[seed])
    else:
        _calibrate_vae_encoder(vae)
        _CALIBRATED_VAES[seed] = {k: v.detach().clone() for k, v in vae.state_dict().items()}
    vae.save_pretrained(path)


def _write_text_encoder_and_tokenizer(root: Path, family: str = DEFAULT_FAMILY,
                                      tower: str = 'text_encoder') -> None:
    """Write ``<tower>/`` and its tokenizer (``tokenizer/``, or ``tokenizer_2/`` for the
    second tower ``text_encoder_2``, a CLIP text model with projection)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    from transformers import CLIPTokenizer
    vocabulary = _byte_level_vocabulary()
    changes = dict(FAMILIES[family][tower])
    pad = changes.pop('pad_token', '<|endoftext|>')
    settings = dict(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        vocab_size=len(vocabulary), max_position_embeddings=77, hidden_act='gelu',
        projection_dim=32, bos_token_id=vocabulary['<|startoftext|>'],
        eos_token_id=vocabulary['<|endoftext|>'], pad_token_id=vocabulary[pad],
    )
    settings.update(changes)
    second = tower == 'text_encoder_2'
    model = CLIPTextModelWithProjection if second else CLIPTextModel
    model(CLIPTextConfig(**settings)).save_pretrained(root / tower)
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file, merges_file = Path(scratch, 'vocab.json'), Path(scratch, 'merges.txt')
        vocab_file.write_text(json.dumps(vocabulary), encoding='utf-8')
        merges_file.write_text('#version: 0.2\n', encoding='utf-8')
        # transformers 5 ignores vocab_file=/merges_file= keywords: pass them positionally.
        tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77,
                                  pad_token=pad)
        tokenizer.save_pretrained(root / ('tokenizer_2' if second else 'tokenizer'))


def _write_scheduler(path: Path, family: str = DEFAULT_FAMILY) -> None:
    import diffusers
    name, settings = FAMILIES[family]['scheduler']
    getattr(diffusers, name)(**settings).save_pretrained(path)


def _write_index(root: Path, family: str = DEFAULT_FAMILY) -> None:
    index = {
        '_class_name': FAMILIES[family].get('pipeline', 'StableDiffusionPipeline'),
        'unet': ['diffusers', 'UNet2DConditionModel'],
        'vae': ['diffusers', 'AutoencoderKL'],
        'text_encoder': ['transformers', 'CLIPTextModel'],
        'tokenizer': ['transformers', 'CLIPTokenizer'],
        'scheduler': ['diffusers', FAMILIES[family]['scheduler'][0]],
    }
    if 'text_encoder_2' in FAMILIES[family]:
        index.update(text_encoder_2=['transformers', 'CLIPTextModelWithProjection'],
                     tokenizer_2=['transformers', 'CLIPTokenizer'])
    (root / INDEX_FILE).write_text(json.dumps(index, indent=2) + '\n', encoding='utf-8')


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a complete model written by :func:`make_tiny_sd`."""
    folder = Path(folder)
    return (folder / INDEX_FILE).is_file() and all((folder / c).is_dir() for c in COMPONENTS)


def make_tiny_sd(out_dir: Path, seed: int = 0, family: str = DEFAULT_FAMILY,
                 vae_from: Optional[Path] = None) -> Path:
    """Write the tiny SD-shaped folder to ``out_dir`` (idempotent, atomic).

    Args:
        out_dir: Target folder. If it already holds a complete model it is returned untouched.
        seed: Seed of the random weights; the same seed gives the same weights.
        family: A key of :data:`FAMILIES` (default ``sd21``, the paper's model).
        vae_from: A complete tiny folder written with the same ``seed``: its ``vae/`` is
            copied instead of calibrated again (the VAE is the same in every family and seeded
            on its own, so the result is identical; saves the calibration's few seconds).

    Returns:
        ``out_dir`` as a :class:`Path`.

    Raises:
        FileExistsError: ``out_dir`` exists, is not empty and is not a complete model.
        ValueError: unknown ``family``.
    """
    if family not in FAMILIES:
        raise ValueError(f'make_tiny_sd: unknown family {family!r}; expected one of '
                         f'{sorted(FAMILIES)}')
    out_dir = Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f'{out_dir} exists but is not a complete tiny SD folder '
                              f'(no {INDEX_FILE}); remove it and run again.')
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.', dir=out_dir.parent))
    try:
        os.chmod(scratch, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
        # Seed each component on its own so that changing one leaves the others' weights alone,
        # without disturbing the caller's global RNG state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _write_unet(scratch / 'unet', family)
            if vae_from is not None and is_complete(Path(vae_from)):
                shutil.copytree(Path(vae_from) / 'vae', scratch / 'vae')
            else:
                torch.manual_seed(seed + 1)
                _write_vae(scratch / 'vae', seed)
            torch.manual_seed(seed + 2)
            _write_text_encoder_and_tokenizer(scratch, family)
            if 'text_encoder_2' in FAMILIES[family]:
                torch.manual_seed(seed + 3)
                _write_text_encoder_and_tokenizer(scratch, family, 'text_encoder_2')
        _write_scheduler(scratch / 'scheduler', family)
        _write_index(scratch, family)
        apply_umask_permissions(scratch)  # safetensors writes 0600 files
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); os.replace needs it gone or empty
        os.replace(scratch, out_dir)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if is_complete(out_dir):  # another process won the race
            return out_dir
        raise
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    logger.info('Wrote tiny %s-shaped model to %s', family, out_dir)
    return out_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir', type=Path, help='folder to write (diffusers format)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    parser.add_argument('--family', choices=sorted(FAMILIES), default=DEFAULT_FAMILY,
                        help='Stable Diffusion family whose differences the tiny model copies')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    print(make_tiny_sd(args.out_dir, seed=args.seed, family=args.family))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
