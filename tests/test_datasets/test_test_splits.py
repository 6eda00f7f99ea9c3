"""The unlabelled test-split configs build on the synthetic test splits (no labels loaded)."""
import pytest
from mmengine.config import Config

from test_datasets.conftest import CONFIG_DIR


@pytest.mark.parametrize('config, benchmark, num', [
    ('cityscapes_test_1024x512.py', 'cityscapes', 4),
    ('acdc_test_960x540.py', 'acdc', 4),
    ('dark_zurich_test_960x540.py', 'dark_zurich', 4),
])
def test_test_split_config_builds_without_labels(build_from_config, config, benchmark, num):
    dataset = build_from_config(config, 'test_dataloader')
    assert len(dataset) == num and not dataset.has_labels
    item = dataset[0]
    assert 'gt_sem_seg' not in item['data_samples']
    evaluator = Config.fromfile(str(CONFIG_DIR / config)).test_evaluator
    assert evaluator.type == 'SubmissionWriter' and evaluator.benchmark == benchmark
