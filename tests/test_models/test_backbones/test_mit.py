"""The MiT (SegFormer encoder) backbone of the DAFormer baseline, on a tiny random folder."""
import json

import pytest
import torch

from mmseg.models.backbones.mit import MiT, MiTWeightsNotFoundError
from mmseg.registry import MODELS
from tools.make_tiny_mit import TINY_MIT, make_tiny_mit

IMAGENET = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])


@pytest.fixture(scope='module')
def tiny_mit_dir(tmp_path_factory):
    return make_tiny_mit(tmp_path_factory.mktemp('mit') / 'tiny-mit', seed=0)


def test_loads_every_saved_encoder_weight_through_the_registry(tiny_mit_dir):
    from transformers import SegformerForImageClassification
    saved = SegformerForImageClassification.from_pretrained(str(tiny_mit_dir)).segformer
    backbone = MODELS.build(dict(type='MixVisionTransformer', pretrained=str(tiny_mit_dir),
                                 **IMAGENET))
    assert isinstance(backbone, MiT)
    loaded = backbone.encoder.state_dict()
    assert loaded.keys() == saved.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in saved.state_dict().items())
    backbone.init_weights()  # must not re-initialise the loaded weights
    assert all(torch.equal(backbone.encoder.state_dict()[k], v) for k, v in loaded.items())
    assert all(p.requires_grad for p in backbone.parameters())  # trained, unlike DIFF
    assert backbone.out_channels == tuple(TINY_MIT['hidden_sizes']) == (8, 16, 40, 64)
    assert backbone.out_strides == (4, 8, 16, 32)
    assert backbone.encoder.config.drop_path_rate == 0.1


def test_forward_normalises_like_imagenet_and_ignores_diff_arguments(tiny_mit_dir):
    backbone = MiT(str(tiny_mit_dir), **IMAGENET).eval()
    images = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        outputs = backbone(images)
        steered = backbone(images, label_map=torch.zeros(2, 1, 64, 96, dtype=torch.long),
                           generator=[torch.Generator(), torch.Generator()])
        pixels = (images + 1) * 127.5
        mean, std = (torch.tensor(IMAGENET[k]).view(1, 3, 1, 1) for k in ('mean', 'std'))
        direct = backbone.encoder(pixel_values=(pixels - mean) / std,
                                  output_hidden_states=True).hidden_states
    assert [tuple(o.shape) for o in outputs] == [
        (2, 8, 16, 24), (2, 16, 8, 12), (2, 40, 4, 6), (2, 64, 2, 3)]
    assert all(torch.equal(a, b) for a, b in zip(outputs, steered))
    for a, b in zip(outputs, direct):  # normalised in another order: 1e-5 of the scale
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * float(b.abs().max()))
    with torch.no_grad():  # negative control: pixels left unnormalised differ far beyond 1e-5
        raw = backbone.encoder(pixel_values=pixels, output_hidden_states=True).hidden_states
    assert (raw[-1] - direct[-1]).abs().max() > 1e-2 * direct[-1].abs().max()


def test_missing_folder_says_what_to_download(tmp_path):
    with pytest.raises(MiTWeightsNotFoundError,
                       match=r'(?s)not found at .*hf download nvidia/mit-b5 --local-dir'):
        MiT(str(tmp_path / 'mit-b5'), **IMAGENET)


def test_weights_of_another_shape_are_an_error(tiny_mit_dir, tmp_path):
    """A config that does not match the weights would leave the encoder partly random."""
    folder = tmp_path / 'wrong'
    folder.mkdir()
    for path in tiny_mit_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((folder / 'config.json').read_text())
    config['depths'] = [2, 1, 1, 1]  # one block more than the weights hold
    (folder / 'config.json').write_text(json.dumps(config))
    with pytest.raises(MiTWeightsNotFoundError, match='missing'):
        MiT(str(folder), **IMAGENET)


def test_bad_normalisation_values_are_an_error(tiny_mit_dir):
    with pytest.raises(ValueError, match='mean and std'):
        MiT(str(tiny_mit_dir), mean=[0.5, 0.5], std=[1, 1, 1])


# transformers 5 renamed SegFormer's weights; nvidia/mit-b5 (an image classifier saved by
# transformers 4) holds the old names under `segformer.`. New name -> old name, in order.
_OLD_NAMES = [
    (r'^stages\.(\d+)\.patch_embeddings\.', r'encoder.patch_embeddings.\1.'),
    (r'^stages\.(\d+)\.blocks\.', r'encoder.block.\1.'),
    (r'^stages\.(\d+)\.layer_norm\.', r'encoder.layer_norm.\1.'),
    (r'attention\.q_proj', 'attention.self.query'),
    (r'attention\.k_proj', 'attention.self.key'),
    (r'attention\.v_proj', 'attention.self.value'),
    (r'attention\.sequence_reduction\.sequence_reduction', 'attention.self.sr'),
    (r'attention\.sequence_reduction\.layer_norm', 'attention.self.layer_norm'),
    (r'attention\.o_proj', 'attention.output.dense'),
    (r'mlp\.fc1', 'mlp.dense1'), (r'mlp\.fc2', 'mlp.dense2'),
    (r'layernorm_before', 'layer_norm_1'), (r'layernorm_after', 'layer_norm_2'),
]


def test_loads_the_transformers4_layout_of_nvidia_mit_b5(tiny_mit_dir, tmp_path):
    """A classifier checkpoint with the old key names (as nvidia/mit-b5 ships) loads fully."""
    import re

    from safetensors.torch import load_file, save_file
    [weights] = tiny_mit_dir.glob('*.safetensors')
    state = load_file(str(weights))
    old = {}
    for name, tensor in state.items():
        if name.startswith('segformer.'):
            inner = name[len('segformer.'):]
            for pattern, replacement in _OLD_NAMES:
                inner = re.sub(pattern, replacement, inner)
            name = 'segformer.' + inner
        old[name] = tensor.contiguous()
    assert 'segformer.encoder.block.0.0.attention.self.query.weight' in old
    folder = tmp_path / 'mit-b5-old'
    folder.mkdir()
    (folder / 'config.json').write_bytes((tiny_mit_dir / 'config.json').read_bytes())
    save_file(old, str(folder / 'model.safetensors'), metadata={'format': 'pt'})
    new = MiT(str(tiny_mit_dir), **IMAGENET).encoder.state_dict()
    loaded = MiT(str(folder), **IMAGENET).encoder.state_dict()
    assert loaded.keys() == new.keys()
    assert all(torch.equal(loaded[k], new[k]) for k in new)
