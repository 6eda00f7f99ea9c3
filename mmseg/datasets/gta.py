"""GTA5 (Playing for Data); only the train split exists."""
from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class GTADataset(BaseSegDataset):
    """GTA5 (Playing for Data); only the train split exists.

    Images ``*.png``, labels ``*_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    IMG_SUFFIX = '.png'
    SEG_MAP_SUFFIX = '_labelTrainIds.png'
    DEFAULT_PREFIX = dict(img_path='images', seg_map_path='labels')
    LAYOUT = ('data/gta/images/*.png and data/gta/labels/*_labelTrainIds.png (RCS json files in '
              'data/gta/)')
    PREPARE = 'python tools/convert_datasets/gta.py data/gta --nproc 8'
