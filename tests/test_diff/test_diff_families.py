"""Other Stable Diffusion UNets as drop-in backbones: SD 1.5, SD 2.1-base and SD 2.0.

Each family's tiny folder (``tools/make_tiny_sd.py --family``) is loaded through the real
loading code with the family's ``configs/diff_configs/<family>.yaml``; the recorded widths and
strides come from the loaded UNet, never from a per-model table.
"""
from pathlib import Path

import pytest
import torch
from diff_helpers import SHORT, SMALL, diff

REPO = Path(__file__).resolve().parents[2]
FAMILY_CONFIGS = {'sd15': 'epsilon', 'sd21-base': 'epsilon', 'sd20': 'v_prediction'}


def _encoder(folder: Path, family: str, **keys) -> 'diff.DIFFEncoder':
    config = diff.DIFFConfig.from_yaml(REPO / 'configs' / 'diff_configs' / f'{family}.yaml',
                                       model_id=str(folder), **{**SMALL, **SHORT, **keys})
    torch.manual_seed(0)
    return diff.DIFFEncoder.from_config(config)


def _expected_levels(unet) -> dict:
    """stride -> recorded channels per saved step, from the UNet's own config: the released
    layers are 3 ResNets per up block and 3 transformer blocks in the cross-attention ones."""
    widths = list(reversed(unet.config.block_out_channels))
    expected = {}
    for block, (width, kind) in enumerate(zip(widths, unet.config.up_block_types)):
        stride = 8 * 2 ** (3 - block)  # VAE x8, then one upsampler per up block but the last
        expected[stride] = width * (6 if kind.startswith('CrossAttn') else 3)
    return expected


@pytest.mark.parametrize('family', sorted(FAMILY_CONFIGS))
def test_family_runs_a_forward_with_widths_from_its_unet(family, tiny_sd_family):
    folder = tiny_sd_family(family)
    encoder = _encoder(folder, family)
    extractor = encoder.extractor
    assert extractor.scheduler.config.prediction_type == FAMILY_CONFIGS[family]
    levels = {lv.stride: lv.channels // lv.num_steps for lv in extractor.levels}
    assert levels == _expected_levels(extractor.unet)
    labels = torch.full((1, 1, 64, 64), 255, dtype=torch.long)
    labels[..., :32, :] = 1  # a prompted class: one path-control branch
    with torch.no_grad():
        outputs = encoder(torch.zeros(1, 3, 64, 64), label_map=labels,
                          generator=[torch.Generator().manual_seed(0)])
    assert encoder.out_channels == (32, 64, 128, 128) and encoder.out_strides == (4, 8, 16, 32)
    assert [tuple(o.shape) for o in outputs] == [
        (1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4), (1, 128, 2, 2)]
    assert all(torch.isfinite(o).all() for o in outputs)


def test_sd15_differs_from_sd21_where_the_real_models_do(tiny_sd_family, tiny_sd_dir):
    """The tiny SD 1.5 has its own text width, cross-attention and attention layout."""
    sd15 = diff.load_sd_components(diff.DIFFConfig(model_id=str(tiny_sd_family('sd15'))))
    sd21 = diff.load_sd_components(diff.DIFFConfig(model_id=str(tiny_sd_dir)))
    assert sd15.text_encoder.config.hidden_size == sd15.unet.config.cross_attention_dim == 24
    assert sd21.text_encoder.config.hidden_size == sd21.unet.config.cross_attention_dim == 32
    assert not sd15.unet.config.use_linear_projection and sd21.unet.config.use_linear_projection
    assert sd15.text_encoder.config.hidden_act == 'quick_gelu'
    # SD 1.5 ships a PNDM scheduler: the DDIM loader reads the same noise schedule from it.
    assert torch.equal(sd15.scheduler.alphas_cumprod, sd21.scheduler.alphas_cumprod)


def test_unet_output_auto_reads_each_family_correctly(tiny_sd_family):
    """`auto` converts v-prediction (SD 2.0) and leaves epsilon models (SD 1.5) alone."""
    for family, converts in (('sd20', True), ('sd15', False)):
        encoder = _encoder(tiny_sd_family(family), family, unet_output='auto')
        assert encoder.extractor._reads_v_prediction() is converts


def test_sdxl_forward_gets_pooled_text_and_size_time_ids_on_every_call(tiny_sd_family):
    """SD XL layout: three levels (no transformer blocks at stride 8), two text towers, and
    every UNet call receives each row's pooled embedding and the image's size/crop time ids."""
    encoder = _encoder(tiny_sd_family('sdxl'), 'sdxl', dtype='auto')
    extractor = encoder.extractor
    levels = {lv.stride: lv.channels // lv.num_steps for lv in extractor.levels}
    assert levels == {8: 8 * 3, 16: 16 * 6, 32: 32 * 6}  # widths from the tiny UNet
    text = extractor.text
    assert text.hidden_states.shape[-1] == extractor.unet.config.cross_attention_dim == 48
    assert text.pooled.shape == (text.num_prompts, 32)
    calls = []

    def record(module, args, kwargs):
        calls.append(kwargs['added_cond_kwargs'])
    handle = extractor.unet.register_forward_pre_hook(record, with_kwargs=True)
    labels = torch.full((1, 1, 64, 96), 255, dtype=torch.long)
    labels[..., :32, :] = 1
    try:
        with torch.no_grad():
            outputs = encoder(torch.zeros(1, 3, 64, 96), label_map=labels,
                              generator=[torch.Generator().manual_seed(0)])
    finally:
        handle.remove()
    assert [tuple(o.shape) for o in outputs] == [
        (1, 32, 16, 24), (1, 64, 8, 12), (1, 128, 4, 6), (1, 128, 2, 3)]
    assert len(calls) == encoder.last_usage.calls == 5
    prompted = extractor.prompts.index(encoder.config.label_prompts[1])
    for added in calls:  # rows: the empty prompt, then class 1's prompt
        assert torch.equal(added['time_ids'], torch.tensor([[64., 96, 0, 0, 64, 96]] * 2))
        assert torch.equal(added['text_embeds'], text.pooled[[0, prompted]])
    assert not torch.equal(text.pooled[0], text.pooled[prompted])  # negative control


def test_text_time_unet_without_a_second_tower_is_one_clear_error(tiny_sd_family, tiny_sd_dir):
    sdxl = diff.load_sd_components(diff.DIFFConfig(model_id=str(tiny_sd_family('sdxl'))))
    single = diff.load_sd_components(diff.DIFFConfig(model_id=str(tiny_sd_dir)))
    sdxl.text_encoder_2 = sdxl.tokenizer_2 = None
    sdxl.text_encoder, sdxl.tokenizer = single.text_encoder, single.tokenizer
    config = diff.DIFFConfig.from_yaml(REPO / 'configs' / 'diff_configs' / 'sdxl.yaml',
                                       model_id=str(tiny_sd_family('sdxl')), dtype='auto',
                                       **{**SMALL, **SHORT})
    with pytest.raises(ValueError, match='needs a pooled text embedding.*text_encoder_2/'):
        diff.DIFFEncoder(config, sdxl)
