"""tools/analyze_logs.py: curves from mmengine's scalars.json to a PNG."""
import json

import cv2
import pytest

from tools.analyze_logs import main as analyze_main
from tools.analyze_logs import read_series


def _log(path, entries):
    path.parent.mkdir(parents=True)
    path.write_text('\n'.join(json.dumps(e) for e in entries) + '\n')


def test_curves_png_from_run_folder(tmp_path):
    run = tmp_path / 'run'
    _log(run / '20250101_000000' / 'vis_data' / 'scalars.json',
         [{'lr': 1e-4, 'loss': 3.0 - 0.1 * i, 'iter': i, 'step': i} for i in range(1, 30)]
         + [{'cityscapes/mIoU': 12.5, 'step': 29}])
    out = analyze_main([str(run), '--keys', 'loss', 'cityscapes/mIoU', '--out',
                        str(tmp_path / 'c.png')])
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 400  # two panels
    steps, values = read_series(run / '20250101_000000' / 'vis_data' / 'scalars.json',
                                ['loss'])['loss']
    assert steps[:2] == [1.0, 2.0] and values[0] == pytest.approx(2.9)


def test_unknown_key_and_missing_log_are_clear_errors(tmp_path):
    _log(tmp_path / 'a' / 'vis_data' / 'scalars.json', [{'loss': 1.0, 'step': 1}])
    with pytest.raises(KeyError, match='mIoU'):
        analyze_main([str(tmp_path / 'a'), '--keys', 'mIoU', '--out', str(tmp_path / 'x.png')])
    with pytest.raises(FileNotFoundError, match='no scalars.json'):
        analyze_main([str(tmp_path / 'empty_dir_missing')])


def test_run_without_a_logged_iteration_is_one_error_line(tmp_path, capsys):
    from mmseg.apis.cli import run_cli
    from tools.analyze_logs import BadLogError, NothingToPlotError
    log = tmp_path / 'run' / '20250101_000000' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    log.write_text('')  # the run stopped before its first logged iteration
    with pytest.raises(SystemExit) as stopped:
        run_cli(analyze_main, [str(tmp_path / 'run'), '--out', str(tmp_path / 'c.png')],
                extra_errors=(NothingToPlotError, BadLogError))
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith('error: no logged iteration in ') and 'nothing to plot' in err
    assert not (tmp_path / 'c.png').exists()
