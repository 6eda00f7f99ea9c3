"""Mapillary Vistas v1.2, labels mapped to the 19 Cityscapes train ids."""
from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class MapillaryDataset(BaseSegDataset):
    """Mapillary Vistas v1.2, labels mapped to the 19 Cityscapes train ids.

    Images ``*.jpg``, labels ``*_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    IMG_SUFFIX = '.jpg'
    SEG_MAP_SUFFIX = '_labelTrainIds.png'
    DEFAULT_PREFIX = dict(img_path='validation/images', seg_map_path='validation/labels')
    LAYOUT = ('data/mapillary/{training,validation}/images/*.jpg with '
              'validation/labels/*_labelTrainIds.png')
    PREPARE = 'python tools/convert_datasets/mapillary.py data/mapillary --nproc 8'
