"""tools/summarize_runs.py: mean and sample std over seeds, from the files runs write."""
import csv
import io
import json
import math

import pytest
from mmengine.visualization import LocalVisBackend

from tools.summarize_runs import SummaryError, main, mean_std, read_run

# Three seeds of one setting: cityscapes/mIoU 40, 42, 47 -> mean 43, sample std sqrt(13).
CS = [40.0, 42.0, 47.0]
ACDC = [30.0, 30.0, 33.0]  # mean 31, std sqrt(3)


def _validation(work_dir, step, metrics):
    """A validation written as the runner's LoggerHook writes it (LocalVisBackend)."""
    backend = LocalVisBackend(save_dir=str(work_dir / '20250101_000000' / 'vis_data'))
    backend._init_env()
    backend.add_scalars(dict(metrics, data_time=0.1, time=0.2), step=step)


def _record(work_dir, seed, name='250101_1200_diff-demo_s0_abcde', lr=6e-5, run=None):
    """The resolved config train.py writes into the work dir (the run's own record)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / f'{name}.py').write_text(
        f"experiment_name = '{run or work_dir.name}_20250101_120000_0'\nseed = {seed}\n"
        f"randomness = dict(seed={seed}, deterministic=False)\nwork_dir = '{work_dir}'\n"
        f"optim_wrapper = dict(optimizer=dict(type='AdamW', lr={lr}))\n")


def _run(root, seed, cs, acdc, road=None, folder=None, **record):
    work_dir = root / (folder or f'250101_1200_diff-demo_s{seed}_abcde')
    _record(work_dir, seed, **record)
    backend = LocalVisBackend(save_dir=str(work_dir / '20250101_000000' / 'vis_data'))
    backend._init_env()
    backend.add_scalars(dict(lr=1e-4, loss=2.0, iter=1), step=1)  # a training line
    # an earlier validation (not the last) that must be ignored by default
    _validation(work_dir, 2, {'cityscapes/mIoU': 99.0, 'acdc/mIoU': 99.0})
    last = {'cityscapes/mIoU': cs, 'cityscapes/IoU.road': road if road is not None else math.nan,
            'acdc/mIoU': acdc, 'acdc/fog/mIoU': acdc - 1, 'cityscapes/aAcc': 80.0}
    _validation(work_dir, 4, last)
    (work_dir / 'iter_4.pth').write_bytes(b'')
    return work_dir


def test_mean_std_is_sample_std():
    mean, std, n = mean_std(CS)
    assert (mean, n) == (43.0, 3) and std == pytest.approx(math.sqrt(13))
    assert math.isnan(mean_std([5.0])[1]) and mean_std([math.nan, 1.0, 3.0])[:3] == (
        2.0, pytest.approx(math.sqrt(2)), 2)


def test_last_validation_and_best(tmp_path):
    work_dir = _run(tmp_path, 0, 40.0, 30.0)
    run = read_run(work_dir)
    assert run.metrics['cityscapes/mIoU'] == 40.0 and run.seed == 0
    assert run.group.startswith('diff-demo [settings ')
    assert 'iter 4 (last, checkpoint iter_4.pth)' in run.source
    assert read_run(work_dir, best='acdc').metrics['acdc/mIoU'] == 99.0
    with pytest.raises(KeyError, match='no bdd100k/mIoU'):
        read_run(work_dir, best='bdd100k')
    _record(tmp_path / 'empty', 0)
    with pytest.raises(FileNotFoundError, match='no test_metrics.json'):
        read_run(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match='no config record'):
        read_run(tmp_path)


def test_three_seeds_markdown_and_csv(tmp_path, capsys):
    runs = [_run(tmp_path, s, cs, acdc, road) for s, cs, acdc, road in
            zip((0, 1, 2), CS, ACDC, (10.0, None, 20.0))]
    # seed 2 was evaluated with tools/test.py: its test_metrics.json wins
    json_metrics = {'cityscapes/mIoU': CS[2], 'cityscapes/IoU.road': 20.0, 'acdc/mIoU': ACDC[2],
                    'acdc/fog/mIoU': ACDC[2] - 1, 'cityscapes/IoU.sky': None}
    (runs[2] / 'test_metrics.json').write_text(json.dumps(
        dict(checkpoint='work_dirs/x/iter_4.pth', metrics=json_metrics), indent=2))
    out_csv, out_md = tmp_path / 's.csv', tmp_path / 's.md'
    [group] = main([str(p) for p in runs] + ['--csv', str(out_csv), '--md', str(out_md)])
    assert [r.seed for r in group.runs] == [0, 1, 2]
    md = out_md.read_text()
    assert 'ddof=1' in md and 'test_metrics.json (checkpoint iter_4.pth)' in md
    assert '| cityscapes/mIoU | 40.00 | 42.00 | 47.00 | 43.00 ± 3.61 | 3 |' in md
    assert '| acdc/mIoU | 30.00 | 30.00 | 33.00 | 31.00 ± 1.73 | 3 |' in md
    assert '| acdc/fog/mIoU | 29.00 | 29.00 | 32.00 | 30.00 ± 1.73 | 3 |' in md
    assert '| cityscapes/IoU.road | 10.00 | n/a | 20.00 | 15.00 ± 7.07 | 2 |' in md
    rows = {r['metric']: r for r in csv.DictReader(io.StringIO(out_csv.read_text()))}
    assert float(rows['cityscapes/mIoU']['mean']) == 43.0
    assert float(rows['cityscapes/mIoU']['std_ddof1']) == pytest.approx(math.sqrt(13), abs=1e-6)
    assert rows['cityscapes/IoU.road']['n'] == '2'
    assert 'aAcc' not in out_csv.read_text()  # mIoU and class IoUs only


def test_run_experiments_prints_the_seed_summary(tmp_path, capsys):
    import run_experiments
    runs = [_run(tmp_path, s, cs, acdc) for s, cs, acdc in zip((0, 1, 2), CS, ACDC)]
    run_experiments.print_seed_summary(runs)
    out = capsys.readouterr().out
    assert '### diff-demo' in out and 'ddof=1' in out
    assert '| cityscapes/mIoU | 40.00 | 42.00 | 47.00 | 43.00 ± 3.61 | 3 |' in out


def test_seed_and_group_come_from_the_records_not_the_folder_names(tmp_path, capsys):
    a = _run(tmp_path, 0, 40.0, 30.0, folder='run_a')  # no _s<N> in the names
    b = _run(tmp_path, 1, 42.0, 30.0, folder='X_s7')  # a misleading name: the record says 1
    other = _run(tmp_path, 0, 50.0, 30.0, folder='run_c', lr=1e-4)
    groups = main([str(a), str(b), str(other)])
    assert [[r.seed for r in g.runs] for g in groups] == [[0, 1], [0]]
    out = capsys.readouterr().out
    assert f'grouped 2 run(s) as {groups[0].name} (same recorded config except the seed; ' \
           'seeds 0, 1)' in out
    assert f'differs from {groups[0].name} in: optim_wrapper.optimizer.lr' in out
    assert '| cityscapes/mIoU | 40.00 | 42.00 | 41.00 ± 1.41 | 2 |' in out


def test_the_same_run_twice_is_refused(tmp_path, capsys):
    import shutil
    run = _run(tmp_path, 0, 40.0, 30.0)
    with pytest.raises(SummaryError, match='is given twice'):
        main([str(run), str(tmp_path / '.' / run.name)])
    copy = shutil.copytree(run, tmp_path / '250101_1200_diff-demo_s7_abcde')
    with pytest.raises(SummaryError, match=r'and .*_s0_abcde are the same run \(recorded run '
                                           r'name .*\): one is a copy'):
        main([str(run), str(copy)])
    from mmseg.apis.cli import run_cli
    with pytest.raises(SystemExit) as stopped:  # as the command line runs it
        run_cli(main, [str(run), str(copy)], extra_errors=(SummaryError, ))
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith('error: ') and len(err.splitlines()) == 1
