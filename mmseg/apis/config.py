"""Loading configs and naming runs (shared by the tools and run_experiments)."""
import itertools
import os
import os.path as osp
import subprocess
import time
from pathlib import Path
from typing import Optional, Union

from mmengine.config import Config

from .eval_batch import apply_eval_batch_size
from .targets import apply_config_options

_RUN_COUNTER = itertools.count()
REPO_ROOT = Path(__file__).resolve().parents[2]


def load_config(path: Union[str, os.PathLike], cfg_options: Optional[dict] = None) -> Config:
    """Read a config file, merge dotted-key overrides, resolve ``target_domains``.

    Raises:
        FileNotFoundError: naming the missing file.
        ConfigValueError: a malformed override or an impossible value (named by key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(str(path))
    if cfg_options:  # an override key that nothing reads is an error (with the closest key)
        from .cli import check_cfg_options, set_mappings_with_non_string_keys
        check_cfg_options(cfg, cfg_options)
        # e.g. label_prompts={99: '...'}: mmengine's merge fails on int keys; set as given
        cfg_options = set_mappings_with_non_string_keys(cfg, cfg_options)
    # merges the overrides and resolves `target_domains` (the val/test domains, UDA target)
    cfg = apply_config_options(cfg, cfg_options)
    from .cli import check_value_ranges  # no 0 or negative iterations, intervals, batch sizes
    check_value_ranges(cfg, cfg_options, str(path))
    return apply_eval_batch_size(cfg)  # every val/test loader follows eval_batch_size


def default_work_dir(config_path: Union[str, os.PathLike]) -> str:
    """``work_dirs/<config stem>`` (mmseg's default)."""
    return osp.join('work_dirs', Path(config_path).stem)


def unique_experiment_name(config_path: Union[str, os.PathLike, None]) -> str:
    """A name unique within this process, for mmengine's per-name global objects.

    mmengine keeps one MessageHub, Visualizer and logger per experiment name;
    two runs in one process (run_experiments, tests) with the same
    second-resolution name would share them.
    """
    stem = Path(config_path).stem if config_path else 'run'
    return f'{stem}_{time.strftime("%Y%m%d_%H%M%S")}_{next(_RUN_COUNTER)}'


def git_revision(repo: Union[str, os.PathLike] = REPO_ROOT) -> str:
    """The repository's HEAD commit, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=str(repo), capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
