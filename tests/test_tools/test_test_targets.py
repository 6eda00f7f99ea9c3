"""tools/test.py --domains (any subset, named after the real domain) and --format-only zips."""
import json
import os
import zipfile

import numpy as np
from PIL import Image

from test_tools.workspace import DEMO, SHORT_TIMESTEPS
from tools.test import main as evaluate_main


def _run(workspace, argv):
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        return evaluate_main(argv)
    finally:
        os.chdir(cwd)


def _model(tiny_sd_dir):
    return ['--cfg-options', f'model.backbone.overrides.model_id={tiny_sd_dir}', *SHORT_TIMESTEPS]


def test_domains_subset_is_named_after_the_domain(workspace, trained_demo, tiny_sd_dir, tmp_path):
    _, ckpt, _ = trained_demo
    wd = tmp_path / 'wd'
    metrics = _run(workspace, [str(DEMO), str(ckpt), '--domains', 'acdc', '--work-dir', str(wd),
                               *_model(tiny_sd_dir)])
    assert metrics and all(k.startswith('acdc/') for k in metrics)
    for condition in ('fog', 'night', 'rain', 'snow'):  # per condition as well as merged
        assert f'acdc/{condition}/mIoU' in metrics
    assert 'acdc/mIoU' in metrics and 'acdc/IoU.road' in metrics
    saved = json.loads((wd / 'test_metrics.json').read_text())['metrics']
    assert set(saved) == set(metrics)


def test_format_only_writes_the_three_server_layouts(workspace, trained_demo, tiny_sd_dir,
                                                     synthetic_data_root, tmp_path):
    _, ckpt, _ = trained_demo
    out, wd = tmp_path / 'submit', tmp_path / 'wd'
    metrics = _run(workspace, [str(DEMO), str(ckpt), '--format-only', '--out', str(out),
                               '--domains', 'cityscapes', 'acdc', 'dark_zurich',
                               '--work-dir', str(wd), *_model(tiny_sd_dir)])
    assert metrics == {}  # no labels, no metric
    assert sorted(p.name for p in out.glob('*.zip')) == ['acdc.zip', 'cityscapes.zip',
                                                         'dark_zurich.zip']
    images = {
        'cityscapes': sorted((synthetic_data_root / 'cityscapes/leftImg8bit/test').rglob('*.png')),
        'acdc': sorted((synthetic_data_root / 'acdc/rgb_anon').glob('*/test/*/*.png')),
        'dark_zurich': sorted((synthetic_data_root / 'dark_zurich/rgb_anon/test').rglob('*.png')),
    }
    assert [len(v) for v in images.values()] == [4, 4, 4]
    assert {p.parts[-4] for p in images['acdc']} == {'fog', 'night', 'rain', 'snow'}
    names = {k: sorted(p.name for p in v) for k, v in images.items()}
    members = {k: sorted(zipfile.ZipFile(out / f'{k}.zip').namelist()) for k in images}
    assert members['cityscapes'] == names['cityscapes']
    assert members['acdc'] == names['acdc']
    assert members['dark_zurich'] == sorted(
        f'{folder}/{n}' for folder in ('labelTrainIds', 'labelTrainIds_invalid', 'confidence')
        for n in names['dark_zurich'])
    valid_label_ids = {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33}
    for domain, paths in images.items():
        with zipfile.ZipFile(out / f'{domain}.zip') as zf:
            for path in paths:
                member = path.name if domain != 'dark_zurich' else f'labelTrainIds/{path.name}'
                with zf.open(member) as f:
                    pred = np.array(Image.open(f))
                assert pred.shape == np.array(Image.open(path)).shape[:2], member
                values = set(np.unique(pred).tolist())
                assert values <= (valid_label_ids if domain == 'cityscapes' else set(range(19)))
    with zipfile.ZipFile(out / 'dark_zurich.zip') as zf:
        name = names['dark_zurich'][0]
        with zf.open(f'confidence/{name}') as f:
            confidence = np.array(Image.open(f))
        assert confidence.dtype == np.uint16 and confidence.max() > 65535 // 19
