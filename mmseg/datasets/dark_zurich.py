"""Dark Zurich (night); labels (val) are released as train ids."""
from typing import Dict

from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class DarkZurichDataset(BaseSegDataset):
    """Dark Zurich (night); labels (val) are released as train ids.

    Images ``*_rgb_anon.png``, labels ``*_gt_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    LAYOUT = ('data/dark_zurich/{rgb_anon,gt}/{train,val}/night/<sequence>/ with *_rgb_anon.png '
              'and *_gt_labelTrainIds.png (train has no labels)')
    PREPARE = ('download Dark_Zurich_train_anon and Dark_Zurich_val_anon and merge their '
               'rgb_anon and gt folders into data/dark_zurich (no conversion needed)')

    def __init__(self,
                 img_suffix: str = '_rgb_anon.png',
                 seg_map_suffix: str = '_gt_labelTrainIds.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def default_prefix(cls) -> Dict[str, str]:
        return dict(img_path='rgb_anon/val', seg_map_path='gt/val')
