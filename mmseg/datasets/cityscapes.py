"""Cityscapes (fine annotations)."""
from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class CityscapesDataset(BaseSegDataset):
    """Cityscapes (fine annotations).

    Images ``*_leftImg8bit.png``, labels ``*_gtFine_labelTrainIds.png``.
    Args as :class:`BaseSegDataset`.
    """

    IMG_SUFFIX = '_leftImg8bit.png'
    SEG_MAP_SUFFIX = '_gtFine_labelTrainIds.png'
    DEFAULT_PREFIX = dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')
    LAYOUT = ('data/cityscapes/{leftImg8bit,gtFine}/{train,val}/<city>/ with *_leftImg8bit.png '
              'and *_gtFine_labelTrainIds.png')
    PREPARE = 'python tools/convert_datasets/cityscapes.py data/cityscapes --nproc 8'
