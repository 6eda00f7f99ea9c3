"""README's tool commands, typed as a user types them, from a folder outside the repository.

Each tool runs as its own process (``python /path/to/tools/X.py ...``) with the working directory
outside the repository, so the project must be importable from the installed environment (no
path edits, no reliance on the current directory). Each runs its main path, not ``--help``.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_tools.workspace import DEMO, REPO, SHORT_TIMESTEPS, demo_options

ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'PYTHONPATH': ''}


def run_tool(cwd: Path, tool: str, *args: str, rc: int = 0, timeout: int = 300) -> str:
    """Run ``python REPO/tools/<tool> args`` in ``cwd``; returns its output; fails on another rc."""
    assert REPO not in cwd.resolve().parents and cwd.resolve() != REPO
    done = subprocess.run([sys.executable, str(REPO / 'tools' / tool), *map(str, args)], cwd=cwd,
                          env=ENV, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == rc, f'{tool} {args}: rc {done.returncode}\n{done.stdout}\n{done.stderr}'
    return done.stdout + done.stderr


def test_readme_tools_run_from_outside_the_repository(workspace, tiny_sd_dir, trained_demo,
                                                     tmp_path):
    tiny = tmp_path / 'tiny sd'
    out = run_tool(tmp_path, 'make_tiny_sd.py', tiny)
    assert (tiny / 'model_index.json').is_file() and str(tiny) in out
    # the tiny folder loads and is fingerprinted, and is (rightly) not SD 2.1's architecture
    assert 'fingerprint' in run_tool(tmp_path, 'get_sd21.py', '--verify-only', tiny, '--expect',
                                     'any').lower()
    refused = run_tool(tmp_path, 'get_sd21.py', '--verify-only', tiny, rc=1)
    assert 'is not Stable Diffusion 2.1' in refused
    synthetic = tmp_path / 'synthetic'
    run_tool(tmp_path, 'make_synthetic_data.py', '--out', synthetic, '--num-source', '2', '--num-train', '1',
             '--num-val', '1', '--num-test', '1')
    assert any(synthetic.rglob('*.png'))
    run_tool(tmp_path, 'get_param_count.py', '--no-usage')
    printed = run_tool(tmp_path, 'print_config.py', DEMO)
    assert 'DIFF' in printed

    work_dir = tmp_path / 'run'
    options = demo_options(tiny_sd_dir, iters=2, validate=False)
    run_tool(workspace, 'train.py', DEMO, '--work-dir', work_dir, '--cfg-options', *options)
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file()
    model = f'model.backbone.overrides.model_id={tiny_sd_dir}'
    short = SHORT_TIMESTEPS  # the inversion the run was trained with
    tested = run_tool(workspace, 'test.py', DEMO, checkpoint, '--cfg-options', model, *short,
                      'test_dataloader.dataset.indices=1', 'val_dataloader.dataset.indices=1')
    assert 'mIoU' in tested
    images = sorted((workspace / 'data' / 'synthetic').rglob('*.png'))[:1]
    run_tool(workspace, 'infer.py', DEMO, checkpoint, images[0], '--out-dir', tmp_path / 'pred',
             '--cfg-options', model, *short)
    assert any((tmp_path / 'pred').iterdir())
    validated_run = trained_demo[0]  # summaries need a run that validated
    summary = run_tool(tmp_path, 'summarize_runs.py', validated_run)
    assert 'mIoU' in summary or 'cityscapes' in summary
    published = tmp_path / 'published' / 'demo.pth'
    published.parent.mkdir()
    run_tool(tmp_path, 'publish_model.py', checkpoint, published)
    assert list(published.parent.glob('demo-*.pth'))


@pytest.mark.parametrize('script', ['run_experiments.py'])
def test_run_experiments_dry_run_from_outside_the_repository(tmp_path, script):
    done = subprocess.run([sys.executable, str(REPO / script), '--exp', '50', '--dry-run'],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
