"""GTA5 (Playing for Data); only the train split exists."""
from typing import Dict

from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class GTADataset(BaseSegDataset):
    """GTA5 (Playing for Data); only the train split exists.

    Images ``*.png``, labels ``*_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    LAYOUT = ('data/gta/images/*.png and data/gta/labels/*_labelTrainIds.png (RCS json files in '
              'data/gta/)')
    PREPARE = 'python tools/convert_datasets/gta.py data/gta --nproc 8'

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def default_prefix(cls) -> Dict[str, str]:
        return dict(img_path='images', seg_map_path='labels')
