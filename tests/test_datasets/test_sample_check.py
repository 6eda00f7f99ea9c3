"""The start-up data check: every bad sample in one report, a cache, skipping on request."""
import os
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from mmseg.apis.preflight import BadSamplesError, DataCheckOptionError, check_dataset_samples
from mmseg.datasets import GTADataset
from mmseg.datasets.sample_check import check_sample
from test_tools.workspace import EXP50


@pytest.fixture
def bad_gta(synthetic_data_root, tmp_path, monkeypatch):
    """A copy of the synthetic GTA set with four bad samples (and its own cache folder)."""
    monkeypatch.setenv('DIFF_CACHE_DIR', str(tmp_path / 'cache'))
    root = shutil.copytree(synthetic_data_root / 'gta', tmp_path / 'gta', symlinks=False)
    images = sorted((root / 'images').glob('*.png'))
    truncated = images[0].read_bytes()
    images[0].write_bytes(truncated[:len(truncated) // 2])  # a truncated PNG
    images[1].write_text('not an image')  # a text file named .png
    label = root / 'labels' / f'{images[2].stem}_labelTrainIds.png'
    values = np.array(Image.open(label))
    values[0, :3] = [19, 33, 254]
    Image.fromarray(values).save(label)  # raw ids among the train ids
    label = root / 'labels' / f'{images[3].stem}_labelTrainIds.png'
    Image.fromarray(np.array(Image.open(label))[:, :-8]).save(label)  # 8 columns narrower
    return root, images


def _cfg(gta_root, cityscapes_root):
    cfg = Config.fromfile(str(EXP50))
    cfg.train_dataloader.dataset.source.data_root = str(gta_root)
    cfg.val_dataloader.dataset.data_root = str(cityscapes_root)
    return cfg


def test_every_problem_in_one_report(bad_gta, synthetic_data_root):
    root, images = bad_gta
    cfg = _cfg(root, synthetic_data_root / 'cityscapes')
    with pytest.raises(BadSamplesError) as error:
        check_dataset_samples(cfg)
    first, *report = str(error.value).splitlines()
    assert first == ('data check: 4 of 32 samples are bad (listed below); fix or remove them, '
                     'or leave them out with --cfg-options data_check.skip_bad_samples=True')
    assert report[0] == '  train_dataloader.dataset.source (GTADataset): 4 of 24 samples bad'
    text = '\n'.join(report)
    assert f'image {images[0]}: unreadable, truncated' in text
    assert f'image {images[1]}: unreadable, truncated or not an image' in text
    assert 'values {19, 33, 254} outside the train ids 0..18 and 255 (ignore)' in text
    width, height = Image.open(images[3]).size
    assert f'is {width - 8}x{height} but its image {images[3]} is {width}x{height}' in text
    assert len(report) == 5  # nothing about the 28 good samples


def test_second_start_is_cached_and_a_changed_file_is_checked_again(bad_gta,
                                                                   synthetic_data_root):
    root, images = bad_gta
    def check():
        cfg = _cfg(root, synthetic_data_root / 'cityscapes')
        cfg.data_check = dict(skip_bad_samples=True)
        return dict(check_dataset_samples(cfg))

    first = check()
    assert [r.opened for r in first.values()] == [24, 8]
    cached = check()
    assert [r.opened for r in cached.values()] == [0, 0]
    assert [len(r.problems) for r in cached.values()] == [4, 0]  # the same findings
    shutil.copy(images[4], images[1])  # the text file replaced by a good image
    again = check()
    assert [r.opened for r in again.values()] == [1, 0]
    assert sorted(again['train_dataloader.dataset.source (GTADataset)'].problems) == sorted(
        map(str, (images[0], images[2], images[3])))
    assert not any((root / 'data-checks').exists() for root in (root, root.parent / 'gta'))


def test_skip_bad_samples_leaves_them_out_of_the_dataset(bad_gta, synthetic_data_root):
    root, images = bad_gta
    cfg = _cfg(root, synthetic_data_root / 'cityscapes')
    cfg.data_check = dict(skip_bad_samples=True, workers=2)
    check_dataset_samples(cfg)
    source = cfg.train_dataloader.dataset.source
    assert source.skip_img_paths == sorted(str(p) for p in images[:4])  # in the saved config
    dataset = GTADataset(**{k: v for k, v in source.items() if k != 'type'})
    assert len(dataset) == 20
    kept = {dataset.get_data_info(i)['img_path'] for i in range(len(dataset))}
    assert kept.isdisjoint(map(str, images[:4])) and str(images[4]) in kept


def test_options_are_checked(synthetic_data_root):
    cfg = _cfg(synthetic_data_root / 'gta', synthetic_data_root / 'cityscapes')
    cfg.data_check = dict(skip_bad=True)
    with pytest.raises(DataCheckOptionError, match=r"data_check: unknown key\(s\) \['skip_bad'\]"):
        check_dataset_samples(cfg)
    cfg.data_check = dict(workers=0)
    with pytest.raises(DataCheckOptionError, match='data_check.workers must be a positive'):
        check_dataset_samples(cfg)
    cfg.data_check = dict(enabled=False)
    assert check_dataset_samples(cfg) == []


def test_unlabelled_sample_and_missing_label(tmp_path):
    image = tmp_path / 'a.png'
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(image)
    assert check_sample(str(image), None) == []
    [problem] = check_sample(str(image), str(tmp_path / 'a_label.png'))
    assert problem.startswith(f'label {tmp_path / "a_label.png"}: ') and 'does not exist' in problem
    os.remove(image)
    assert check_sample(str(image), None) == [f'image {image}: missing']
