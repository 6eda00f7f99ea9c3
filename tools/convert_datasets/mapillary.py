"""Convert Mapillary Vistas v1.2 labels (66 classes) to the 19 Cityscapes train ids.

Usage: ``python tools/convert_datasets/mapillary.py data/mapillary --nproc 8``. For each
split present (``training``, ``validation``) reads ``<split>/v1.2/labels/*.png`` (palette
PNGs whose indices are the v1.2 class ids) and writes ``<split>/labels/*_labelTrainIds.png``;
the class statistics of the training split go into ``<root>``.
"""
from pathlib import Path
from typing import Optional, Sequence

from tools.convert_datasets._common import (
    TRAIN_ID_SUFFIX, convert_with_table, lookup_table, run_cli, save_class_stats)

# Mapillary Vistas v1.2 class id -> Cityscapes train id. This is the mapping used by the
# domain-generalisation literature that evaluates GTA-trained models on Mapillary
# (RobustNet, Choi et al. CVPR 2021, and later DG benchmarks such as tue-mps/benchmark-vfm-ss):
# ids follow the order of the v1.2 `config.json`; every id not listed (animals, bridges,
# tunnels, crosswalk markings, other objects, caravans, trailers, boats, void) is ignored.
MAPILLARY_V12_TO_TRAIN_ID = {
    13: 0,  # construction--flat--road -> road
    24: 0,  # marking--general -> road
    41: 0,  # object--manhole -> road
    2: 1,  # construction--barrier--curb -> sidewalk
    15: 1,  # construction--flat--sidewalk -> sidewalk
    17: 2,  # construction--structure--building -> building
    6: 3,  # construction--barrier--wall -> wall
    3: 4,  # construction--barrier--fence -> fence
    45: 5,  # object--support--pole -> pole
    47: 5,  # object--support--utility-pole -> pole
    48: 6,  # object--traffic-light -> traffic light
    50: 7,  # object--traffic-sign--front -> traffic sign
    30: 8,  # nature--vegetation -> vegetation
    29: 9,  # nature--terrain -> terrain
    27: 10,  # nature--sky -> sky
    19: 11,  # human--person -> person
    20: 12,  # human--rider--bicyclist -> rider
    21: 12,  # human--rider--motorcyclist -> rider
    22: 12,  # human--rider--other-rider -> rider
    55: 13,  # object--vehicle--car -> car
    61: 14,  # object--vehicle--truck -> truck
    54: 15,  # object--vehicle--bus -> bus
    58: 16,  # object--vehicle--on-rails -> train
    57: 17,  # object--vehicle--motorcycle -> motorcycle
    52: 18,  # object--vehicle--bicycle -> bicycle
}

#: Number of classes of Vistas v1.2 (ids 0..65); a larger id means the wrong label version.
NUM_V12_IDS = 66
SPLITS = ('training', 'validation')


def convert(root: Path, nproc: int = 1) -> Path:
    """Convert the v1.2 labels of every split under ``root``; return ``root``."""
    root = Path(root)
    splits = [s for s in SPLITS if (root / s / 'v1.2' / 'labels').is_dir()]
    if not splits:
        raise FileNotFoundError(
            f'{root} has no <split>/v1.2/labels folder (split in {SPLITS}): expected the '
            'Mapillary Vistas v1.2 layout. See data/README.md.')
    table = lookup_table(MAPILLARY_V12_TO_TRAIN_ID, size=NUM_V12_IDS)
    for split in splits:
        raw = sorted((root / split / 'v1.2' / 'labels').glob('*.png'))
        out_dir = root / split / 'labels'
        stats = convert_with_table(raw,
                                   lambda p, d=out_dir: d / (p.stem + TRAIN_ID_SUFFIX),
                                   table,
                                   root,
                                   nproc,
                                   f'Mapillary {split}')
        if split == 'training':
            save_class_stats(root, stats)
    return root


def main(argv: Optional[Sequence[str]] = None) -> None:
    run_cli(convert, 'Convert Mapillary Vistas v1.2 labels to Cityscapes train ids.', argv,
            [('MapillaryDataset', dict(img_path=f'{split}/images', seg_map_path=f'{split}/labels'))
             for split in SPLITS])


if __name__ == '__main__':
    main()
