"""Cityscapes (fine annotations)."""
from typing import Dict

from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class CityscapesDataset(BaseSegDataset):
    """Cityscapes (fine annotations).

    Images ``*_leftImg8bit.png``, labels ``*_gtFine_labelTrainIds.png``.
    Args as :class:`BaseSegDataset`.
    """

    LAYOUT = ('data/cityscapes/{leftImg8bit,gtFine}/{train,val}/<city>/ with *_leftImg8bit.png '
              'and *_gtFine_labelTrainIds.png')
    PREPARE = 'python tools/convert_datasets/cityscapes.py data/cityscapes --nproc 8'

    def __init__(self,
                 img_suffix: str = '_leftImg8bit.png',
                 seg_map_suffix: str = '_gtFine_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def default_prefix(cls) -> Dict[str, str]:
        return dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')
