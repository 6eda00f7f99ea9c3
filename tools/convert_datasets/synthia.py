"""Convert SYNTHIA-RAND-CITYSCAPES labels to Cityscapes train ids and write RCS statistics.

Usage: ``python tools/convert_datasets/synthia.py data/synthia --nproc 8``. Reads
``<root>/GT/LABELS/*.png`` (16-bit, class id in the last channel as OpenCV reads it) and
writes ``<root>/GT/LABELS/*_labelTrainIds.png`` plus the statistics into ``<root>``.
"""
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from tools.convert_datasets._common import (
    TRAIN_ID_SUFFIX, convert_label_dir, lookup_table, require_dir, run_cli)

#: SYNTHIA class ids -> Cityscapes train ids (release table; terrain, truck, train never occur).
SYNTHIA_ID_TO_TRAIN_ID = {
    3: 0,
    4: 1,
    2: 2,
    21: 3,
    5: 4,
    7: 5,
    15: 6,
    9: 7,
    6: 8,
    16: 9,
    1: 10,
    10: 11,
    17: 12,
    8: 13,
    18: 14,
    19: 15,
    20: 16,
    12: 17,
    11: 18
}


def read_synthia_ids(path: Path) -> np.ndarray:
    """The class-id channel of a SYNTHIA label (last channel in OpenCV's order)."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise OSError(f'Cannot read raw SYNTHIA label {path}')
    return label[:, :, -1] if label.ndim == 3 else label


def convert(root: Path, nproc: int = 1) -> Path:
    """Convert every raw SYNTHIA label under ``root/GT/LABELS``; return ``root``."""
    root = Path(root)
    label_dir = require_dir(root / 'GT' / 'LABELS', 'the SYNTHIA labels <root>/GT/LABELS/*.png')
    return convert_label_dir(root,
                             label_dir,
                             lambda p: not p.name.endswith(TRAIN_ID_SUFFIX),
                             lookup_table(SYNTHIA_ID_TO_TRAIN_ID),
                             nproc,
                             'SYNTHIA labels',
                             missing='raw SYNTHIA labels',
                             read=read_synthia_ids)


def main(argv: Optional[Sequence[str]] = None) -> None:
    run_cli(convert, 'Convert SYNTHIA labels to Cityscapes train ids.', argv,
            [('SynthiaDataset', dict(img_path='RGB', seg_map_path='GT/LABELS'))])


if __name__ == '__main__':
    main()
