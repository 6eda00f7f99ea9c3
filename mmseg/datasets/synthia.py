"""SYNTHIA-RAND-CITYSCAPES; only the train split exists."""
from typing import Dict

from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class SynthiaDataset(BaseSegDataset):
    """SYNTHIA-RAND-CITYSCAPES; only the train split exists.

    Images ``*.png``, labels ``*_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    LAYOUT = 'data/synthia/RGB/*.png and data/synthia/GT/LABELS/*_labelTrainIds.png'
    PREPARE = 'python tools/convert_datasets/synthia.py data/synthia --nproc 8'

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def default_prefix(cls) -> Dict[str, str]:
        return dict(img_path='RGB', seg_map_path='GT/LABELS')
