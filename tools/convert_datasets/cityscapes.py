"""Convert Cityscapes polygon annotations to train-id labels (cityscapesscripts).

Usage: ``python tools/convert_datasets/cityscapes.py data/cityscapes --nproc 8``. Runs
``json2labelImg(..., 'trainIds')`` on every ``gtFine/**/*_gtFine_polygons.json``, writes
``*_gtFine_labelTrainIds.png`` beside it, the class statistics of the ``train`` split and
the split lists ``<root>/{train,val,test}.txt`` (``<city>/<city>_<seq>_<frame>``).
"""
from functools import partial
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
from PIL import Image


from cityscapesscripts.preparation.json2labelImg import json2labelImg

from mmseg.utils import atomic_path, atomic_write_text
from tools.convert_datasets._common import (
    class_stats, require_dir, run_cli, run_parallel, save_class_stats)

POLYGONS = '_gtFine_polygons.json'
TRAIN_IDS = '_gtFine_labelTrainIds.png'
IMAGES = '_leftImg8bit.png'


def convert_json(json_file: Path, root: Path) -> Dict[str, object]:
    """Rasterise one polygons file to train ids; return its class stats."""
    out = json_file.with_name(json_file.name[:-len(POLYGONS)] + TRAIN_IDS)
    with atomic_path(out) as tmp:
        try:
            json2labelImg(str(json_file), str(tmp), 'trainIds')
        except SystemExit:  # cityscapesscripts' printError exits on an unknown label
            raise ValueError(f'{json_file}: cityscapesscripts rejected an object label '
                             '(see the message above); expected Cityscapes label names.') \
                from None
    with Image.open(out) as img:
        stats: Dict[str, object] = dict(class_stats(np.array(img)))
    stats['file'] = out.relative_to(root).as_posix()
    return stats


def write_split_lists(root: Path) -> None:
    """``<root>/<split>.txt``: image names relative to ``leftImg8bit/<split>``, no suffix."""
    img_root = root / 'leftImg8bit'
    if not img_root.is_dir():
        return
    for split_dir in sorted(p for p in img_root.iterdir() if p.is_dir()):
        names = sorted(
            p.relative_to(split_dir).as_posix()[:-len(IMAGES)]
            for p in split_dir.rglob('*' + IMAGES))
        atomic_write_text(root / f'{split_dir.name}.txt', ''.join(n + '\n' for n in names))


def convert(root: Path, nproc: int = 1) -> Path:
    """Convert every polygons file under ``root/gtFine``; return ``root``."""
    root = Path(root)
    gt_dir = require_dir(root / 'gtFine', 'the Cityscapes gtFine/<split>/<city>/ folders')
    jsons = sorted(gt_dir.rglob('*' + POLYGONS))
    if not jsons:
        raise FileNotFoundError(f'{gt_dir} holds no *{POLYGONS} files.')
    stats = run_parallel(partial(convert_json, root=root), jsons, nproc, 'Cityscapes labels')
    # Class statistics (for rare-class sampling) only describe the training split.
    train = [s for s, j in zip(stats, jsons) if j.relative_to(gt_dir).parts[0] == 'train']
    save_class_stats(root, train)
    write_split_lists(root)
    return root


def main(argv: Optional[Sequence[str]] = None) -> None:
    run_cli(convert, 'Convert Cityscapes polygons to train-id labels.', argv,
            [('CityscapesDataset', dict(img_path=f'leftImg8bit/{split}',
                                        seg_map_path=f'gtFine/{split}'))
             for split in ('train', 'val')])


if __name__ == '__main__':
    main()
