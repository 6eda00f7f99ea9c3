"""Every dataset built from its config on real (synthetic) files; bad input errors."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmseg.datasets import CityscapesDataset, GTADataset
from mmseg.registry import DATASETS
from mmseg.structures import SegDataSample
from mmseg.utils import CITYSCAPES_METAINFO

VALID = set(range(19)) | {255}

# (config file, expected dataset type, images, resized input (h, w), original label (h, w))
VAL_CONFIGS = [
    ('cityscapes_val_1024x512.py', 'CityscapesDataset', 8, (512, 1024), (128, 256)),
    ('acdc_val_960x540.py', 'ACDCDataset', 8, (480, 960), (128, 256)),
    ('dark_zurich_val_960x540.py', 'DarkZurichDataset', 8, (480, 960), (128, 256)),
    ('bdd100k_val_1280x720.py', 'BDD100KDataset', 8, (640, 1280), (128, 256)),
    ('mapillary_val_1024x512.py', 'MapillaryDataset', 8, (512, 1024), (128, 256)),
    ('synthetic_dg.py', 'CityscapesDataset', 8, (128, 256), (128, 256)),
]


def check_item(item: dict, input_hw, label_hw) -> None:
    assert item['inputs'].dtype == torch.uint8 and tuple(item['inputs'].shape) == (3, *input_hw)
    sample = item['data_samples']
    assert isinstance(sample, SegDataSample)
    label = sample.gt_sem_seg.data
    assert label.dtype == torch.int64 and tuple(label.shape) == (1, *label_hw)
    assert set(label.unique().tolist()) <= VALID
    assert tuple(sample.ori_shape) == label_hw and tuple(sample.img_shape) == input_hw
    assert Path(sample.img_path).is_file() and Path(sample.seg_map_path).is_file()


@pytest.mark.parametrize('config,type_name,num,input_hw,label_hw', VAL_CONFIGS)
def test_val_dataset_from_config(build_from_config, config, type_name, num, input_hw, label_hw):
    dataset = build_from_config(config)
    assert type(dataset).__name__ == type_name and len(dataset) == num
    assert dataset.metainfo['classes'] == CITYSCAPES_METAINFO['classes']
    for i in (0, num - 1):
        check_item(dataset[i], input_hw, label_hw)


@pytest.mark.parametrize('config', ['gta_512x512.py', 'synthetic_dg.py'])
def test_dg_train_dataset_from_config(build_from_config, config):
    dataset = build_from_config(config, 'train_dataloader', rcs_min_pixels=200)
    assert type(dataset).__name__ == 'DGDataset' and len(dataset) == 24
    # gta_512x512: 256x144 -> 1280x720 (factor 5), crop 512; synthetic: crop 128
    crop = (512, 512) if config == 'gta_512x512.py' else (128, 128)
    item = dataset[0]
    assert tuple(item['inputs'].shape) == (3, *crop)
    assert set(item['data_samples'].gt_sem_seg.data.unique().tolist()) <= VALID


@pytest.mark.parametrize('config,target_type,target_labels', [
    ('uda_gta_to_cityscapes_512x512.py', 'CityscapesDataset', True),
    ('uda_gta_to_acdc_512x512.py', 'ACDCDataset', True),
    ('uda_gta_to_darkzurich_512x512.py', 'DarkZurichDataset', False),
    ('synthetic_uda.py', 'CityscapesDataset', True),
])
def test_uda_train_dataset_from_config(build_from_config, config, target_type, target_labels):
    dataset = build_from_config(config, 'train_dataloader', rcs_min_pixels=200)
    assert type(dataset).__name__ == 'UDADataset'
    assert type(dataset.target).__name__ == target_type
    assert len(dataset) == len(dataset.source) * len(dataset.target)
    item = dataset[3]
    assert set(item) == {'inputs', 'data_samples', 'target_inputs', 'target_data_samples'}
    assert item['target_inputs'].dtype == torch.uint8 and item['target_inputs'].shape[0] == 3
    assert ('gt_sem_seg' in item['target_data_samples']) == target_labels


def test_dark_zurich_train_has_no_labels(synthetic_data_root):
    dataset = DATASETS.build(
        dict(type='DarkZurichDataset',
             data_root=str(synthetic_data_root / 'dark_zurich'),
             data_prefix=dict(img_path='rgb_anon/train/night'),
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='PackSegInputs')]))
    assert len(dataset) == 8 and dataset.get_data_info(0)['seg_map_path'] is None
    assert 'gt_sem_seg' not in dataset[0]['data_samples']


def test_label_path_derived_from_image_path(synthetic_data_root):
    dataset = CityscapesDataset(data_root=str(synthetic_data_root / 'cityscapes'),
                                data_prefix=dict(img_path='leftImg8bit/val',
                                                 seg_map_path='gtFine/val'))
    info = dataset.get_data_info(0)
    img, seg = Path(info['img_path']), Path(info['seg_map_path'])
    assert img.name.replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png') == seg.name
    assert img.parent.name == seg.parent.name  # same city folder


# --- bad input ---------------------------------------------------------------------------


def _gta(root: Path, **kwargs) -> GTADataset:
    return GTADataset(data_root=str(root),
                      data_prefix=dict(img_path='images', seg_map_path='labels'),
                      **kwargs)


def test_missing_data_root_names_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        _gta(tmp_path / 'nowhere')
    msg = str(err.value)
    assert str(tmp_path / 'nowhere') in msg and 'Expected layout' in msg
    assert 'tools/convert_datasets/gta.py' in msg


def test_wrong_layout_names_missing_folder(tmp_path):
    (tmp_path / 'imgs').mkdir()
    with pytest.raises(FileNotFoundError, match='images does not exist'):
        _gta(tmp_path)


def test_no_images_with_suffix(tmp_path):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'a.jpg').write_bytes(b'x')
    with pytest.raises(FileNotFoundError, match=r'no \*\.png images under'):
        _gta(tmp_path)


def test_image_without_label(synthetic_data_root, tmp_path):
    root = tmp_path / 'gta'
    shutil.copytree(synthetic_data_root / 'gta' / 'images', root / 'images')
    shutil.copytree(synthetic_data_root / 'gta' / 'labels', root / 'labels')
    (root / 'labels' / '00003_labelTrainIds.png').unlink()
    with pytest.raises(FileNotFoundError) as err:
        _gta(root)
    assert '00003.png has no label' in str(err.value)
    assert str(root / 'labels' / '00003_labelTrainIds.png') in str(err.value)


def test_corrupt_image_and_bad_label_stop_with_the_file(synthetic_data_root, tmp_path):
    root = tmp_path / 'gta'
    shutil.copytree(synthetic_data_root / 'gta' / 'images', root / 'images')
    shutil.copytree(synthetic_data_root / 'gta' / 'labels', root / 'labels')
    (root / 'images' / '00001.png').write_bytes(b'not a png')
    # An unconverted label (raw ids 0..33) under the converted name.
    shutil.copy(root / 'labels' / '00002.png', root / 'labels' / '00002_labelTrainIds.png')
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    dataset = _gta(root, pipeline=pipeline)
    with pytest.raises(OSError, match=r'Cannot read image .*00001\.png'):
        dataset[0]
    with pytest.raises(ValueError, match=r'00002_labelTrainIds\.png holds values'):
        dataset[1]
    assert np.asarray(dataset[2]['inputs']).shape[0] == 3


def test_unknown_prefix_key_is_an_error(tmp_path):
    with pytest.raises(KeyError, match='data_prefix'):
        GTADataset(data_root=str(tmp_path), data_prefix=dict(img='images'))


def test_unknown_config_keys_are_named(tmp_path):
    with pytest.raises(TypeError, match='img_dir'):  # an mmseg 0.x key
        DATASETS.build(dict(type='GTADataset', data_root=str(tmp_path), img_dir='images'))
    with pytest.raises(TypeError, match=r"unknown keys \['min_pixel'\]"):
        DATASETS.build(
            dict(type='DGDataset',
                 source=dict(type='GTADataset', data_root=str(tmp_path)),
                 rare_class_sampling=dict(min_pixel=3000)))
