"""Label converters on synthetic raw data: mappings, outputs, statistics, errors."""
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from PIL import Image

from tools.convert_datasets import cityscapes, gta, mapillary, synthia
from tools.synthetic.render import ID_TO_TRAIN_ID
from tools.synthetic.writers import MAPILLARY_FROM_CS, SYNTHIA_FROM_CS


def read(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def test_gta_table_is_cityscapes_id_to_train_id():
    expected = {lab.id: lab.trainId for lab in CS_LABELS if lab.id >= 0 and 0 <= lab.trainId < 19}
    assert gta.GTA_ID_TO_TRAIN_ID == expected


def test_synthia_and_mapillary_tables():
    assert sorted(synthia.SYNTHIA_ID_TO_TRAIN_ID.values()) == list(range(19))
    table = mapillary.MAPILLARY_V12_TO_TRAIN_ID
    assert set(table.values()) == set(range(19)) and max(table) < mapillary.NUM_V12_IDS
    assert table[13] == table[24] == table[41] == 0 and table[20] == table[21] == table[22] == 12
    # The synthetic writers' raw ids convert back to the Cityscapes train ids.
    syn = synthia.SYNTHIA_ID_TO_TRAIN_ID
    for cs_id in range(34):
        assert table.get(int(MAPILLARY_FROM_CS[cs_id]), 255) == ID_TO_TRAIN_ID[cs_id]
        assert syn.get(int(SYNTHIA_FROM_CS[cs_id]), 255) == ID_TO_TRAIN_ID[cs_id]


def copy_raw(src: Path, dst: Path, keep) -> Path:
    """Copy ``src`` to ``dst`` without converter outputs (files ``keep`` rejects)."""
    shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if not keep(n)])
    return dst


def check_stats(root: Path, label_glob: str) -> None:
    stats = json.loads((root / 'sample_class_stats.json').read_text())
    per_file = json.loads((root / 'sample_class_stats_dict.json').read_text())
    with_class = json.loads((root / 'samples_with_class.json').read_text())
    files = sorted(p.relative_to(root).as_posix() for p in root.glob(label_glob))
    assert sorted(s['file'] for s in stats) == files == sorted(per_file)
    for entry in stats:
        counts = np.bincount(read(root / entry['file']).ravel(), minlength=256)
        assert {k: v for k, v in entry.items() if k != 'file'} == \
            {str(c): int(counts[c]) for c in range(19) if counts[c]}
        for c, n in per_file[entry['file']].items():
            assert [entry['file'], n] in with_class[c]
    assert sum(len(v) for v in with_class.values()) == sum(len(v) for v in per_file.values())


def test_gta_converter(synthetic_data_root, tmp_path):
    root = copy_raw(synthetic_data_root / 'gta', tmp_path / 'gta', lambda n: not n.endswith(
        ('_labelTrainIds.png', '.json')))
    gta.main([str(root), '--nproc', '2'])
    raw = sorted((root / 'labels').glob('[0-9]*[0-9].png'))
    assert len(raw) == 24
    for path in raw:
        out = read(path.with_name(path.stem + '_labelTrainIds.png'))
        assert (out == ID_TO_TRAIN_ID[read(path)]).all()
    check_stats(root, 'labels/*_labelTrainIds.png')
    first = (root / 'samples_with_class.json').read_bytes()
    gta.main([str(root)])  # one process gives the same files
    assert (root / 'samples_with_class.json').read_bytes() == first


def test_cityscapes_converter(synthetic_data_root, tmp_path):
    root = copy_raw(
        synthetic_data_root / 'cityscapes', tmp_path / 'cs', lambda n: not (n.endswith(
            ('_labelTrainIds.png', '.txt')) or n.startswith('sample')))
    cityscapes.main([str(root)])
    label_ids = sorted(root.glob('gtFine/*/*/*_gtFine_labelIds.png'))
    assert len(label_ids) == 16
    for path in label_ids:
        train_ids = read(Path(str(path).replace('_labelIds', '_labelTrainIds')))
        assert (train_ids == ID_TO_TRAIN_ID[read(path)]).all()
    check_stats(root, 'gtFine/train/*/*_gtFine_labelTrainIds.png')  # train split only
    names = (root / 'val.txt').read_text().split()
    assert len(names) == 8 and all(re.fullmatch(r'\w+/\w+_\d{6}_\d{6}', n) for n in names)


def test_cityscapes_unknown_polygon_label_names_the_file(tmp_path):
    gt = tmp_path / 'gtFine' / 'val' / 'x'
    gt.mkdir(parents=True)
    (gt / 'x_000000_000000_gtFine_polygons.json').write_text(
        json.dumps(
            dict(imgHeight=4,
                 imgWidth=4,
                 objects=[dict(label='spaceship', polygon=[[0, 0], [3, 0], [3, 3]])])))
    with pytest.raises(ValueError, match=r'x_000000_000000_gtFine_polygons\.json'):
        cityscapes.convert(tmp_path)
    assert not list(gt.glob('*labelTrainIds*'))  # nothing half-written


def test_synthia_converter(synthetic_data_root, tmp_path):
    root = copy_raw(synthetic_data_root / 'synthia', tmp_path / 'synthia', lambda n: not n.endswith(
        ('_labelTrainIds.png', '.json')))
    synthia.main([str(root)])
    table = np.full(65536, 255, np.uint8)
    for raw, train in synthia.SYNTHIA_ID_TO_TRAIN_ID.items():
        table[raw] = train
    for path in sorted((root / 'GT' / 'LABELS').glob('[0-9]*[0-9].png')):
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint16 and raw.ndim == 3
        assert (read(path.with_name(path.stem + '_labelTrainIds.png')) == table[raw[..., 2]]).all()
    check_stats(root, 'GT/LABELS/*_labelTrainIds.png')


def test_mapillary_converter_every_v12_id(tmp_path):
    labels = tmp_path / 'validation' / 'v1.2' / 'labels'
    labels.mkdir(parents=True)
    Image.fromarray(np.arange(66, dtype=np.uint8).reshape(6, 11)).save(labels / 'abc.png')
    mapillary.main([str(tmp_path)])
    out = read(tmp_path / 'validation' / 'labels' / 'abc_labelTrainIds.png').ravel()
    expected = [mapillary.MAPILLARY_V12_TO_TRAIN_ID.get(i, 255) for i in range(66)]
    assert out.tolist() == expected
    assert not (tmp_path / 'sample_class_stats.json').exists()  # no training split
    Image.fromarray(np.full((2, 2), 70, np.uint8)).save(labels / 'bad.png')
    with pytest.raises(ValueError, match=r'bad\.png: raw id 70'):
        mapillary.convert(tmp_path)


def test_mapillary_converter_on_synthetic(synthetic_data_root):
    root = synthetic_data_root / 'mapillary'
    for split in ('training', 'validation'):
        assert len(list((root / split / 'labels').glob('*_labelTrainIds.png'))) == 8
    check_stats(root, 'training/labels/*_labelTrainIds.png')


@pytest.mark.parametrize('module', [gta, cityscapes, synthia, mapillary])
def test_missing_root_names_the_path(tmp_path, module):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'none'))):
        module.convert(tmp_path / 'none')


def test_converter_runs_the_data_check(synthetic_data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('DIFF_CACHE_DIR', str(tmp_path / 'cache'))
    root = copy_raw(synthetic_data_root / 'gta', tmp_path / 'gta', lambda n: not n.endswith(
        ('_labelTrainIds.png', '.json')))
    image = sorted((root / 'images').glob('*.png'))[5]
    image.write_bytes(image.read_bytes()[:200])  # truncated
    with pytest.raises(SystemExit) as stopped:
        gta.main([str(root)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert '\nerror: data check: 1 of 24 converted samples are bad' in err  # after the bars
    assert f'image {image}: unreadable, truncated' in err
