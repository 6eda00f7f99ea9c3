"""ACDC (adverse conditions: fog, night, rain, snow); labels are released as train ids."""
from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class ACDCDataset(BaseSegDataset):
    """ACDC (adverse conditions: fog, night, rain, snow); labels are released as train ids.

    Images ``*_rgb_anon.png``, labels ``*_gt_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    IMG_SUFFIX = '_rgb_anon.png'
    SEG_MAP_SUFFIX = '_gt_labelTrainIds.png'
    DEFAULT_PREFIX = dict(img_path='rgb_anon', seg_map_path='gt')
    LAYOUT = ('data/acdc/{rgb_anon,gt}/<condition>/{train,val}/<sequence>/ with *_rgb_anon.png '
              'and *_gt_labelTrainIds.png')
    PREPARE = ('download rgb_anon and gt from acdc.vision.ee.ethz.ch and unpack both into '
               'data/acdc (no conversion needed)')
