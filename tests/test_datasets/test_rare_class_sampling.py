"""Rare-class sampling: probabilities by hand, candidate files, re-crop loop, reproducibility."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.runner import set_random_seed
from mmengine.structures import PixelData

from mmseg.datasets import DGDataset, UDADataset, rcs_class_probs
from mmseg.datasets.rare_class_sampling import RareClassSampler
from mmseg.structures import SegDataSample


def write_stats(root: Path, per_file: dict) -> None:
    """Write the two RCS files for ``{file: {class: pixels}}``."""
    stats = [dict({str(c): n for c, n in counts.items()}, file=f) for f, counts in per_file.items()]
    with_class = {}
    for f, counts in per_file.items():
        for c, n in counts.items():
            with_class.setdefault(str(c), []).append([f, n])
    (root / 'sample_class_stats.json').write_text(json.dumps(stats))
    (root / 'samples_with_class.json').write_text(json.dumps(with_class))


@pytest.mark.parametrize('temperature', [0.01, 0.1, 1.0])
def test_probabilities_are_softmax_of_one_minus_frequency(tmp_path, temperature):
    write_stats(tmp_path, {'a.png': {0: 100, 1: 10}, 'b.png': {0: 50, 5: 40}})
    classes, probs = rcs_class_probs(tmp_path / 'sample_class_stats.json', temperature)
    total = 200
    freq = {0: 150 / total, 1: 10 / total, 5: 40 / total}
    z = sum(math.exp((1 - f) / temperature) for f in freq.values())
    assert classes == [1, 5, 0]  # rarest first
    assert probs == pytest.approx([math.exp((1 - freq[c]) / temperature) / z for c in classes],
                                  rel=1e-12)


def test_probabilities_on_converted_synthetic_gta(synthetic_data_root):
    root = synthetic_data_root / 'gta'
    totals = {}
    for entry in json.loads((root / 'sample_class_stats.json').read_text()):
        for key, n in entry.items():
            if key != 'file':
                totals[int(key)] = totals.get(int(key), 0) + n
    classes, probs = rcs_class_probs(root / 'sample_class_stats.json', 0.01)
    assert sorted(classes) == sorted(totals) and len(classes) == 19
    n = np.array([totals[c] for c in classes], float)
    logits = (1 - n / n.sum()) / 0.01
    assert probs == pytest.approx(np.exp(logits) / np.exp(logits).sum(), rel=1e-9)


class StubSource:
    """A labelled source whose crops hold class 3 only from the ``succeed_at``-th call on."""

    data_root = ''
    metainfo = {}

    def __init__(self, succeed_at: int, pixels: int = 2000):
        self.calls, self.succeed_at, self.pixels = 0, succeed_at, pixels

    def __len__(self):
        return 2

    def get_data_info(self, i):
        return dict(seg_map_path=f'labels/{i}_labelTrainIds.png')

    def __getitem__(self, i):
        self.calls += 1
        label = torch.zeros(1, 64, 64, dtype=torch.int64)
        if self.calls >= self.succeed_at:
            label.view(-1)[:self.pixels] = 3
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        return dict(inputs=torch.zeros(3, 64, 64, dtype=torch.uint8), data_samples=sample)


@pytest.mark.parametrize(
    'succeed_at,pixels,ratio,calls',
    [
        (1, 2000, 0.5, 1),  # first crop has 2000 > 3000 * 0.5 pixels: no re-run
        (4, 2000, 0.5, 4),  # three misses, then success
        (100, 2000, 0.5, 11),  # never: first run + 10 re-runs, last one kept
        (1, 1500, 0.5, 11),  # 1500 is not > 1500
        (100, 2000, 0.0, 1),  # min_crop_ratio 0 disables re-cropping
    ])
def test_recrop_loop(tmp_path, succeed_at, pixels, ratio, calls):
    write_stats(tmp_path, {'0_labelTrainIds.png': {3: 5000}, '1_labelTrainIds.png': {0: 9000}})
    source = StubSource(succeed_at, pixels)
    dataset = DGDataset(source,
                        rare_class_sampling=dict(min_pixels=3000,
                                                 class_temp=0.01,
                                                 min_crop_ratio=ratio),
                        stats_dir=str(tmp_path))
    np.random.seed(0)
    assert dataset.rcs.draw() == (3, 0)  # the rarer class (P ~ 1 at T = 0.01), in file 0
    np.random.seed(0)
    item = dataset[123]  # the index is ignored under RCS
    assert len(dataset) == 2 and source.calls == calls
    assert item['data_samples'].gt_sem_seg.data.shape == (1, 64, 64)


def test_candidates_need_more_than_min_pixels(tmp_path):
    write_stats(tmp_path, {'a.png': {2: 3000, 7: 10}, 'b.png': {2: 3001, 7: 3500}})
    sampler = RareClassSampler(str(tmp_path), ['x/a.png', 'y/b.png'], min_pixels=3000)
    assert sampler.files_with_class == {7: ['b.png'], 2: ['b.png']}
    assert sampler.file_to_idx == {'a.png': 0, 'b.png': 1}
    write_stats(tmp_path, {'a.png': {2: 3000, 7: 10}})
    with pytest.raises(ValueError, match='min_pixels=3000 pixels of class 7'):
        RareClassSampler(str(tmp_path), ['x/a.png'], min_pixels=3000)


def test_missing_statistics_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        RareClassSampler(str(tmp_path), ['a.png'])
    assert str(tmp_path / 'sample_class_stats.json') in str(err.value)
    assert 'convert_datasets' in str(err.value)


@pytest.fixture
def rcs_gta(build_from_config):
    return build_from_config('synthetic_dg.py', 'train_dataloader')


def test_class_draws_follow_probabilities(rcs_gta):
    np.random.seed(0)
    rcs = rcs_gta.rcs
    draws = [rcs.draw() for _ in range(4000)]
    counts = np.bincount([rcs.classes.index(c) for c, _ in draws], minlength=len(rcs.classes))
    assert np.abs(counts / 4000 - rcs.probs).max() < 0.03
    for c, idx in draws[:200]:  # the file drawn for c holds enough of c
        name = Path(rcs_gta.source.get_data_info(idx)['seg_map_path']).name
        assert name in rcs.files_with_class[c]


def test_rcs_item_holds_the_sampled_class(rcs_gta):
    rcs, hits = rcs_gta.rcs, 0
    for seed in range(20):
        np.random.seed(seed)
        c, idx = rcs.draw()
        np.random.seed(seed)
        item = rcs_gta[0]
        assert item['data_samples'].img_path == rcs_gta.source.get_data_info(idx)['img_path']
        hits += int((item['data_samples'].gt_sem_seg.data == c).sum()) > 200 * 0.5
    assert hits >= 16


def test_rcs_is_reproducible_under_mmengine_seeding(rcs_gta):

    def run():
        set_random_seed(7)
        return [rcs_gta[0] for _ in range(4)]

    first, second = run(), run()
    for a, b in zip(first, second):
        assert a['data_samples'].img_path == b['data_samples'].img_path
        assert torch.equal(a['inputs'], b['inputs'])
    assert len({item['data_samples'].img_path for item in first + second}) > 1


def test_uda_dataset_pairs_and_keys(build_from_config):
    dataset = build_from_config('synthetic_uda.py', 'train_dataloader')
    assert isinstance(dataset, UDADataset) and dataset.rcs is not None
    plain = UDADataset(dataset.source, dataset.target)
    n_t = len(plain.target)
    item = plain[n_t + 2]  # source 1, target 2
    assert item['data_samples'].img_path == plain.source.get_data_info(1)['img_path']
    assert item['target_data_samples'].img_path == plain.target.get_data_info(2)['img_path']
    set_random_seed(0)
    item = dataset[0]
    assert item['target_inputs'].shape == (3, 128, 128) and item['inputs'].shape == (3, 128, 128)


def test_runner_dataloader_is_reproducible(synthetic_data_root):
    """The config's train_dataloader through mmengine's Runner: same seed, same batches."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from .conftest import load_config, retarget
    init_default_scope('mmseg')
    cfg = retarget(load_config('synthetic_dg.py').train_dataloader.to_dict(), synthetic_data_root)

    def batches():
        set_random_seed(0)
        loader = Runner.build_dataloader(cfg, seed=0)
        it = iter(loader)
        return [next(it) for _ in range(3)]

    first, second = batches(), batches()
    for a, b in zip(first, second):
        assert a['data_samples'][0].img_path == b['data_samples'][0].img_path
        assert torch.equal(a['inputs'][0], b['inputs'][0])
