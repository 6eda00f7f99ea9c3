"""Mapillary Vistas v1.2, labels mapped to the 19 Cityscapes train ids."""
from typing import Dict

from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class MapillaryDataset(BaseSegDataset):
    """Mapillary Vistas v1.2, labels mapped to the 19 Cityscapes train ids.

    Images ``*.jpg``, labels ``*_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    LAYOUT = ('data/mapillary/{training,validation}/images/*.jpg with '
              'validation/labels/*_labelTrainIds.png')
    PREPARE = 'python tools/convert_datasets/mapillary.py data/mapillary --nproc 8'

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def default_prefix(cls) -> Dict[str, str]:
        return dict(img_path='validation/images', seg_map_path='validation/labels')
