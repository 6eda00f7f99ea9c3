"""SYNTHIA-RAND-CITYSCAPES; only the train split exists."""
from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class SynthiaDataset(BaseSegDataset):
    """SYNTHIA-RAND-CITYSCAPES; only the train split exists.

    Images ``*.png``, labels ``*_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    IMG_SUFFIX = '.png'
    SEG_MAP_SUFFIX = '_labelTrainIds.png'
    DEFAULT_PREFIX = dict(img_path='RGB', seg_map_path='GT/LABELS')
    LAYOUT = 'data/synthia/RGB/*.png and data/synthia/GT/LABELS/*_labelTrainIds.png'
    PREPARE = 'python tools/convert_datasets/synthia.py data/synthia --nproc 8'
