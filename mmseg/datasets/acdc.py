"""ACDC (adverse conditions: fog, night, rain, snow); labels are released as train ids."""
from typing import Dict

from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class ACDCDataset(BaseSegDataset):
    """ACDC (adverse conditions: fog, night, rain, snow); labels are released as train ids.

    Images ``*_rgb_anon.png``, labels ``*_gt_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    LAYOUT = ('data/acdc/{rgb_anon,gt}/<condition>/{train,val}/<sequence>/ with *_rgb_anon.png '
              'and *_gt_labelTrainIds.png')
    PREPARE = ('download rgb_anon and gt from acdc.vision.ee.ethz.ch and unpack both into '
               'data/acdc (no conversion needed)')

    def __init__(self,
                 img_suffix: str = '_rgb_anon.png',
                 seg_map_suffix: str = '_gt_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def default_prefix(cls) -> Dict[str, str]:
        return dict(img_path='rgb_anon', seg_map_path='gt')
