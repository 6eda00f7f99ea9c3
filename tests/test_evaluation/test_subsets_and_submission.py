"""IoUMetric per subset (ACDC conditions) and on unlabelled sets; SubmissionWriter layouts."""
import zipfile

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from PIL import Image

from mmseg.datasets import ACDCDataset
from mmseg.evaluation import IoUMetric, SubmissionWriter
from mmseg.evaluation.submission import train_id_to_label_id
from mmseg.structures import SegDataSample

META = dict(classes=('a', 'b', 'c', 'd'))
IMG1 = ([[0, 1, 1], [1, 2, 0]], [[0, 0, 1], [1, 255, 2]])
IMG2 = ([[2, 0], [0, 1]], [[2, 2], [0, 255]])
IMG3 = ([[3, 3], [0, 1]], [[3, 2], [0, 1]])


def sample(pred, label=None, img_path='x.png', logits=None):
    s = SegDataSample()
    pred = torch.tensor(pred)
    s.pred_sem_seg = PixelData(data=pred[None])
    if label is not None:
        s.gt_sem_seg = PixelData(data=torch.tensor(label)[None])
    if logits is not None:
        s.seg_logits = PixelData(data=logits)
    s.set_metainfo(dict(img_path=img_path, ori_shape=tuple(pred.shape)))
    return s.to_dict()


def evaluate(metric, samples):
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_subsets_equal_a_metric_over_each_subset_alone():
    root = '/data/night/acdc/rgb_anon'  # a root folder named like a condition is ignored
    fog = [sample(*IMG1, img_path=f'{root}/fog/val/GOPR1/a_rgb_anon.png'),
           sample(*IMG3, img_path=f'{root}/fog/val/GOPR1/c_rgb_anon.png')]
    night = [sample(*IMG2, img_path=f'{root}/night/val/GOPR2/b_rgb_anon.png')]
    metric = IoUMetric()
    metric.dataset_meta = dict(META, subsets=('fog', 'night', 'rain'))
    merged = evaluate(metric, fog + night)
    plain = IoUMetric()
    plain.dataset_meta = META
    assert {k: v for k, v in merged.items() if '/' not in k} == pytest.approx(
        evaluate(plain, fog + night), nan_ok=True)
    for name, part in (('fog', fog), ('night', night)):
        alone = IoUMetric()
        alone.dataset_meta = META
        expected = evaluate(alone, part)
        assert {k[len(name) + 1:]: v for k, v in merged.items()
                if k.startswith(f'{name}/')} == pytest.approx(expected, nan_ok=True)
    assert not any(k.startswith('rain/') for k in merged)  # no rain image, no rain metric


def test_acdc_dataset_names_its_conditions(synthetic_data_root):
    root = synthetic_data_root / 'acdc'
    both = ACDCDataset(data_root=str(root),
                       data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
                       sub_dirs=['night/val', 'fog/val'])
    assert both.metainfo['subsets'] == ('fog', 'night')
    test = ACDCDataset(data_root=str(root), data_prefix=dict(img_path='rgb_anon'),
                       sub_dirs=['fog/test', 'night/test', 'rain/test', 'snow/test'])
    assert test.metainfo['subsets'] == ACDCDataset.CONDITIONS and len(test) == 4
    assert all(info['seg_map_path'] is None for info in test.data_list)


def test_unlabelled_set_gives_no_metric_and_a_mix_is_an_error():
    metric = IoUMetric()
    metric.dataset_meta = META
    assert evaluate(metric, [sample(IMG1[0]), sample(IMG2[0])]) == {}
    metric = IoUMetric()
    metric.dataset_meta = META
    with pytest.raises(ValueError, match='1 of 2 images have no label'):
        evaluate(metric, [sample(*IMG1), sample(IMG2[0])])


def _read(path):
    return np.array(Image.open(path))


def test_cityscapes_submission_uses_label_ids(tmp_path):
    table = train_id_to_label_id()
    assert table[[0, 1, 10, 13, 18]].tolist() == [7, 8, 23, 26, 33]
    writer = SubmissionWriter('cityscapes', str(tmp_path))
    name = 'berlin_000000_000019_leftImg8bit.png'
    pred = [[0, 13, 18], [10, 1, 0]]
    assert evaluate(writer, [sample(pred, img_path=f'/x/leftImg8bit/test/berlin/{name}')]) == {}
    assert _read(tmp_path / 'cityscapes' / name).tolist() == [[7, 26, 33], [23, 8, 7]]
    with zipfile.ZipFile(tmp_path / 'cityscapes.zip') as zf:
        assert zf.namelist() == [name]


def test_acdc_submission_is_one_flat_folder_of_train_ids(tmp_path):
    writer = SubmissionWriter('acdc', str(tmp_path))
    names = [f'GOPR047{i}_frame_000041_rgb_anon.png' for i in range(2)]
    evaluate(writer, [sample([[i, 18]], img_path=f'/a/rgb_anon/{c}/test/GOPR047{i}/{n}')
                      for i, (c, n) in enumerate(zip(('fog', 'snow'), names))])
    assert sorted(p.name for p in (tmp_path / 'acdc' / 'labelTrainIds').iterdir()) == names
    assert _read(tmp_path / 'acdc' / 'labelTrainIds' / names[1]).tolist() == [[1, 18]]
    with zipfile.ZipFile(tmp_path / 'acdc.zip') as zf:
        assert sorted(zf.namelist()) == names  # flat: no folders, no extra files


def test_dark_zurich_submission_has_the_three_codalab_folders(tmp_path):
    writer = SubmissionWriter('dark_zurich', str(tmp_path))
    logits = torch.tensor([[[0.0, 2.0]], [[0.0, 0.0]]])  # 2 classes, 1x2 image
    name = 'GOPR0364_frame_000001_rgb_anon.png'
    evaluate(writer, [sample([[0, 0]], img_path=f'/d/rgb_anon/test/night/GOPR0364/{name}',
                             logits=logits)])
    root = tmp_path / 'dark_zurich'
    assert _read(root / 'labelTrainIds' / name).tolist() == [[0, 0]]
    assert _read(root / 'labelTrainIds_invalid' / name).tolist() == [[0, 0]]
    confidence = Image.open(root / 'confidence' / name)
    expected = np.round(np.array([0.5, 1 / (1 + np.exp(-2.0))]) * 65535)
    assert np.array(confidence).ravel().tolist() == expected.astype(int).tolist()
    assert np.array(confidence).max() > 255  # 16-bit
    with zipfile.ZipFile(tmp_path / 'dark_zurich.zip') as zf:
        assert sorted(zf.namelist()) == [f'{f}/{name}' for f in
                                         ('confidence', 'labelTrainIds', 'labelTrainIds_invalid')]


def test_prediction_at_another_size_is_refused(tmp_path):
    writer = SubmissionWriter('acdc', str(tmp_path))
    bad = sample([[0, 1]], img_path='/a/x_rgb_anon.png')
    bad['ori_shape'] = (1080, 1920)
    with pytest.raises(ValueError, match=r'not at the image size \(1080, 1920\)'):
        writer.process({}, [bad])
    with pytest.raises(ValueError, match='benchmarks with a test server'):
        SubmissionWriter('bdd100k', str(tmp_path))
