"""Fixtures of the tool tests: a working directory on the fixture data, and one short run."""
import pytest

from test_tools.workspace import DEMO, demo_options, make_workspace


@pytest.fixture(scope='session')
def workspace(tmp_path_factory, synthetic_data_root):
    return make_workspace(tmp_path_factory.mktemp('ws'), synthetic_data_root)


@pytest.fixture(scope='session')
def trained_demo(workspace, tiny_sd_dir):
    """(work_dir, checkpoint) of a 2-iteration demo run with validation (in ``workspace``)."""
    import os

    from tools.train import main as train_main
    work_dir = workspace / 'work_dirs' / 'demo2'
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        metrics = train_main([str(DEMO), '--work-dir', str(work_dir), '--cfg-options',
                              *demo_options(tiny_sd_dir, iters=2, validate=True),
                              'val_cfg.extra_domains.acdc.dataset.indices=2',
                              'val_dataloader.dataset.indices=2',
                              'val_cfg.extra_domains.dark_zurich.dataset.indices=2'])
    finally:
        os.chdir(cwd)
    return work_dir, work_dir / 'iter_2.pth', metrics
