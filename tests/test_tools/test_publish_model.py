"""tools/publish_model.py: slim, hashed, safely loadable; loads back into the segmentor."""
import hashlib

import pytest
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


def _checkpoint(path, meta):
    torch.save({'state_dict': {'decode_head.w': torch.arange(6.).reshape(2, 3)},
                'optimizer': {}, 'meta': meta}, path)
    return path


def test_same_weights_give_the_same_name_and_bytes(tmp_path):
    a = _checkpoint(tmp_path / 'a.pth', {'iter': 4, 'seed': 0, 'time': '20250101_000000',
                                         'experiment_name': 'demo_20250101_000000_0'})
    b = _checkpoint(tmp_path / 'b.pth', {'iter': 4, 'seed': 0, 'time': '20250102_120000',
                                         'experiment_name': 'demo_20250102_120000_3'})
    first = publish_main([str(a), str(tmp_path / 'out' / 'm.pth')])
    data = first.read_bytes()
    first.unlink()
    again = publish_main([str(a), str(tmp_path / 'out' / 'm.pth')])
    assert again == first and again.read_bytes() == data  # same run, same bytes
    rerun = publish_main([str(b), str(tmp_path / 'other' / 'm.pth')])
    assert rerun.name == first.name and rerun.read_bytes() == data  # only time/name differ
    assert torch.load(rerun, weights_only=True)['meta'] == {'iter': 4, 'seed': 0}
    # negative control: other weights, another name
    c = tmp_path / 'c.pth'
    torch.save({'state_dict': {'decode_head.w': torch.ones(2, 3)}, 'meta': {'iter': 4}}, c)
    assert publish_main([str(c), str(tmp_path / 'out' / 'm.pth')]).name != first.name


def test_sigterm_during_the_write_leaves_no_file(tmp_path, monkeypatch, capsys):
    """A real SIGTERM to this process while the file is half-written (main thread handler)."""
    import os
    import signal
    from pathlib import Path
    ckpt = _checkpoint(tmp_path / 'a.pth', {'iter': 1})
    out_dir = tmp_path / 'out'
    original, seen = Path.write_bytes, []

    def write_then_terminated(self, data):
        original(self, data[:100])
        seen.extend(out_dir.iterdir())
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0.1)  # a pause in which the handler runs

    monkeypatch.setattr(Path, 'write_bytes', write_then_terminated)
    with pytest.raises(SystemExit) as stopped:
        publish_main([str(ckpt), str(out_dir / 'm.pth')])
    assert stopped.value.code == 128 + signal.SIGTERM
    assert len(seen) == 1 and seen[0].name.startswith('.m-')  # the temporary file existed
    assert 'stopped by SIGTERM; nothing was written' in capsys.readouterr().err
    assert list(out_dir.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is restored
    # an error during the write removes it too
    monkeypatch.setattr(Path, 'write_bytes', lambda self, data: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        publish_main([str(ckpt), str(out_dir / 'm.pth')])
    assert list(out_dir.iterdir()) == []
