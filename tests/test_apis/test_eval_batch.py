"""eval_batch_size: one key sets the batch size of every val/test loader of every domain."""
import pytest

from mmseg.apis import load_config
from mmseg.apis.eval_batch import apply_eval_batch_size

FIVE = 'configs/diff/diff-daformer_sd21_srconly-40k_gta2five-512x512.py'


def _batch_sizes(cfg):
    sizes = [cfg.val_dataloader.batch_size, cfg.test_dataloader.batch_size]
    for stage in ('val', 'test'):
        sizes += [loader.batch_size for loader in cfg[f'{stage}_cfg'].extra_domains.values()]
    return sizes


def test_one_key_sets_every_loader(repo_root):
    cfg = load_config(repo_root / FIVE)
    assert cfg.eval_batch_size == 1 and set(_batch_sizes(cfg)) == {1}
    assert len(_batch_sizes(cfg)) == 10  # val and test, five domains each
    cfg = load_config(repo_root / FIVE, {'eval_batch_size': 4})
    assert set(_batch_sizes(cfg)) == {4}
    apply_eval_batch_size(cfg, 2)  # what tools/test.py --batch-size 2 does
    assert cfg.eval_batch_size == 2 and set(_batch_sizes(cfg)) == {2}


def test_bad_batch_size_is_an_error(repo_root):
    with pytest.raises(ValueError, match='eval_batch_size must be a positive integer'):
        load_config(repo_root / FIVE, {'eval_batch_size': 0})
