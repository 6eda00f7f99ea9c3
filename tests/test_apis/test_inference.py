"""init_model / inference_model: strict anchored loading, arrays and files, original size."""
import cv2
import numpy as np
import pytest
import torch

from mmseg.apis import inference_model, init_model
from mmseg.engine import CheckpointMismatchError
from test_tools.workspace import DEMO, SHORT_TIMESTEP_VALUES


@pytest.fixture(scope='module')
def model_and_options(tiny_sd_dir):
    options = {'model.backbone.overrides.model_id': str(tiny_sd_dir), **SHORT_TIMESTEP_VALUES}
    return init_model(str(DEMO), None, cfg_options=options), options


def _save(path, state_dict, **extra):
    torch.save(dict(state_dict=state_dict, **extra), path)
    return path


def test_checkpoint_round_trip_and_uda_prefix(model_and_options, tmp_path):
    model, options = model_and_options
    weights = {k: v + 1.0 if v.is_floating_point() else v
               for k, v in model.state_dict().items()}
    loaded = init_model(str(DEMO), _save(tmp_path / 'a.pth', weights), cfg_options=options)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in weights.items())
    # a DACS checkpoint: student under 'model.', teacher and counter left aside
    dacs = {f'model.{k}': v for k, v in weights.items()}
    dacs.update({'teacher.ema_params.x': torch.zeros(1), 'local_iter': torch.tensor(5)})
    loaded = init_model(str(DEMO), _save(tmp_path / 'b.pth', dacs), cfg_options=options)
    key = 'decode_head.conv_seg.weight'
    assert torch.equal(loaded.state_dict()[key], weights[key])
    assert not any(k.startswith('model.') for k in loaded.state_dict())


def test_only_anchored_prefixes_are_stripped(model_and_options, tmp_path):
    model, options = model_and_options
    # the release's bug: an unanchored 'model.' also hit 'diff_model.'-like inner names
    renamed = {k.replace('decode_head.', 'decode_headmodel.'): v
               for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError,
                       match=r'(?s)missing keys.*decode_head\..*unexpected keys.*decode_headmodel'):
        init_model(str(DEMO), _save(tmp_path / 'c.pth', renamed), cfg_options=options)


def test_inference_on_arrays_and_files(model_and_options, tmp_path):
    model, _ = model_and_options
    rng = np.random.default_rng(0)
    array = rng.integers(0, 255, (90, 170, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'x.png'), array)
    from_array, from_file = inference_model(model, [array, tmp_path / 'x.png'], batch_size=2)
    for sample in (from_array, from_file):
        assert sample.pred_sem_seg.data.shape == (1, 90, 170)
        assert sample.seg_logits.data.shape == (19, 90, 170)
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8 BGR'):
        inference_model(model, np.zeros((4, 4), np.uint8))
