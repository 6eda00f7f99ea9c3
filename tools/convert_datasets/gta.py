"""Convert GTA5 labels (Cityscapes label ids) to train ids and write RCS statistics.

Usage: ``python tools/convert_datasets/gta.py data/gta --nproc 8``. Reads
``<root>/labels/<5 digits>.png``, writes ``<root>/labels/*_labelTrainIds.png`` and the
class statistics json files into ``<root>``.
"""
import re
from pathlib import Path
from typing import Optional, Sequence

from tools.convert_datasets._common import (
    convert_label_dir, lookup_table, require_dir, run_cli)

#: GTA ships Cityscapes label ids; the 19 evaluated ones map to train ids (release table).
GTA_ID_TO_TRAIN_ID = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18
}

# Raw labels end in a digit; converted ones end in `_labelTrainIds.png`.
RAW_LABEL = re.compile(r'.*\d\.png$')


def convert(root: Path, nproc: int = 1) -> Path:
    """Convert every raw GTA label under ``root/labels``; return ``root``."""
    root = Path(root)
    label_dir = require_dir(root / 'labels', 'the GTA labels folder <root>/labels/*.png')
    return convert_label_dir(root,
                             label_dir,
                             lambda p: RAW_LABEL.match(p.name) is not None,
                             lookup_table(GTA_ID_TO_TRAIN_ID),
                             nproc,
                             'GTA labels',
                             missing='raw GTA labels (<digits>.png)')


def main(argv: Optional[Sequence[str]] = None) -> None:
    run_cli(convert, 'Convert GTA5 labels to Cityscapes train ids.', argv,
            [('GTADataset', dict(img_path='images', seg_map_path='labels'))])


if __name__ == '__main__':
    main()
