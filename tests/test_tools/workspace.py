"""A throw-away working directory for tool tests: the demo config on fixture data.

The demo config names ``data/synthetic/...`` (relative to the working directory)
and ``checkpoints/tiny-sd21`` (relative to diff_config.yaml). Tests run inside a
temporary folder whose ``data/synthetic`` links to the session's synthetic data,
and point ``model_id`` at the session's tiny model.
"""
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'configs/diff/diff-daformer_tiny_srconly_syn-demo.py'
EXP50 = REPO / 'configs/diff/diff-daformer_sd21_srconly-40k_gta2cs-512x512.py'
# A 2-step inversion keeps each backbone pass at a few milliseconds.
SHORT_TIMESTEP_VALUES = {'model.backbone.overrides.timesteps': [20, 8, 4],
                         'model.backbone.overrides.saved_steps': [2, 1]}
SHORT_TIMESTEPS = [f'{k}=[{",".join(map(str, v))}]' for k, v in SHORT_TIMESTEP_VALUES.items()]


def make_workspace(root: Path, synthetic_data_root: Path) -> Path:
    """``root`` with ``data/synthetic`` -> the fixture data; returns ``root``."""
    (root / 'data').mkdir(parents=True, exist_ok=True)
    link = root / 'data' / 'synthetic'
    if not link.exists():
        link.symlink_to(synthetic_data_root, target_is_directory=True)
    return root


def demo_options(tiny_sd_dir: Path, iters: int = 2, validate: bool = False) -> List[str]:
    """--cfg-options for a short demo run on the fixture model."""
    options = [f'model.backbone.overrides.model_id={tiny_sd_dir}', f'train_cfg.max_iters={iters}',
               f'default_hooks.checkpoint.interval={iters}', 'default_hooks.logger.interval=1',
               *SHORT_TIMESTEPS]
    if validate:
        options += [f'train_cfg.val_interval={iters}']
    else:
        options += ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    return options
