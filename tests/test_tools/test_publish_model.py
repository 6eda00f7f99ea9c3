"""tools/publish_model.py: slim, hashed, safely loadable; loads back into the segmentor."""
import hashlib

import torch

from mmseg.apis import init_model
from test_tools.workspace import DEMO, SHORT_TIMESTEP_VALUES
from tools.publish_model import main as publish_main


def test_publish_drops_training_state_and_hashes_name(trained_demo, tiny_sd_dir, tmp_path):
    _, ckpt, _ = trained_demo
    out = publish_main([str(ckpt), str(tmp_path / 'demo.pth')])
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert out.name == f'demo-{digest[:8]}.pth'
    slim = torch.load(out, weights_only=True)
    assert set(slim) == {'meta', 'state_dict'}
    full = torch.load(ckpt, weights_only=True)
    assert slim['state_dict'].keys() == full['state_dict'].keys()
    assert out.stat().st_size < ckpt.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    model = init_model(str(DEMO), out, cfg_options={
        'model.backbone.overrides.model_id': str(tiny_sd_dir), **SHORT_TIMESTEP_VALUES})
    assert torch.equal(model.state_dict()['decode_head.conv_seg.weight'],
                       full['state_dict']['decode_head.conv_seg.weight'])


def test_uda_teacher_state_is_dropped(tmp_path):
    ckpt = tmp_path / 'dacs.pth'
    torch.save({'state_dict': {'model.decode_head.w': torch.ones(1), 'teacher.ema_params.x':
                               torch.ones(1), 'local_iter': torch.tensor(3)},
                'optimizer': {}, 'meta': {'iter': 3}}, ckpt)
    out = publish_main([str(ckpt), str(tmp_path / 'p.pth')])
    assert list(torch.load(out, weights_only=True)['state_dict']) == ['model.decode_head.w']
