"""--cfg-options values named by key when malformed; impossible values refused; one error line."""
import os

import pytest

from mmseg.apis import load_config
from mmseg.apis.cli import ConfigValueError, parse_value, run_cli
from mmseg.apis.preflight import WorkDirError, check_work_dir
from test_tools.workspace import DEMO


@pytest.mark.parametrize('option, message', [
    ('train_cfg.max_iters=abc',
     '--cfg-options train_cfg.max_iters=abc: expected an integer (the config holds 400)'),
    ('optim_wrapper.optimizer.lr=1e-3e',
     '--cfg-options optim_wrapper.optimizer.lr=1e-3e: expected a number'),
    ('train_cfg.max_iters=2.5', '--cfg-options train_cfg.max_iters=2.5: expected an integer'),
    ('target_domains=[acdc', '--cfg-options target_domains=[acdc: unbalanced brackets'),
    ('train_cfg.max_iters=-3',
     'train_cfg.max_iters = -3 (from --cfg-options): expected an integer >= 1'),
    ('default_hooks.checkpoint.interval=0', 'default_hooks.checkpoint.interval = 0 (from '
     '--cfg-options): expected an integer >= 1 or -1 (never)'),
    ('train_dataloader.batch_size=0', 'train_dataloader.batch_size = 0 (from --cfg-options)'),
])
def test_bad_values_are_named_by_key(option, message):
    key, value = option.split('=', 1)
    with pytest.raises(ConfigValueError) as error:
        load_config(DEMO, {key: parse_value(value)})
    assert str(error.value).startswith(message)


def test_good_values_pass_and_a_bad_file_value_names_the_file(tmp_path):
    cfg = load_config(DEMO, {'train_cfg.max_iters': 3, 'optim_wrapper.optimizer.lr': 1e-3,
                             'default_hooks.checkpoint.interval': -1})
    assert cfg.train_cfg.max_iters == 3 and cfg.optim_wrapper.optimizer.lr == 1e-3
    copy = tmp_path / 'bad.py'
    copy.write_text(f"_base_ = ['{DEMO}']\ntrain_cfg = dict(val_interval=0)\n")
    with pytest.raises(ConfigValueError, match=f'train_cfg.val_interval = 0 \\(in {copy}\\)'):
        load_config(copy)


def _main(argv):
    load_config(DEMO, {'train_cfg.max_iters': parse_value(argv[0])})


def test_one_error_line_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        run_cli(_main, ['abc'])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count('\n') == 1 and err.startswith('error: ')


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_read_only_work_dir(tmp_path, capsys):
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(WorkDirError, match=f'cannot write into the work dir {folder}'):
            check_work_dir(str(folder))
        with pytest.raises(WorkDirError, match='choose a writable --work-dir'):
            check_work_dir(str(folder / 'run'))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)
    assert check_work_dir(str(folder / 'run')).is_dir()


def test_work_dir_below_a_file(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(WorkDirError, match=f'cannot write into the work dir {tmp_path}/file/run: '
                                           'Not a directory; choose a writable --work-dir'):
        check_work_dir(str(tmp_path / 'file' / 'run'))


def test_user_error_types_cover_files_targets_and_values():
    from mmseg.apis.cli import user_error_types
    from mmseg.apis.targets import TargetDomainError
    from mmseg.utils import DiskFullError
    types = user_error_types()
    for error in (OSError(30, 'Read-only file system'), DiskFullError('full'),
                  FileNotFoundError('x'), TargetDomainError('x'), ConfigValueError('x')):
        assert isinstance(error, types)
    assert not isinstance(ValueError('a programming error'), types)  # a traceback stays
