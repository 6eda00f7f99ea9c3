"""Dark Zurich (night); labels (val) are released as train ids."""
from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class DarkZurichDataset(BaseSegDataset):
    """Dark Zurich (night); labels (val) are released as train ids.

    Images ``*_rgb_anon.png``, labels ``*_gt_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    """

    IMG_SUFFIX = '_rgb_anon.png'
    SEG_MAP_SUFFIX = '_gt_labelTrainIds.png'
    DEFAULT_PREFIX = dict(img_path='rgb_anon/val', seg_map_path='gt/val')
    LAYOUT = ('data/dark_zurich/{rgb_anon,gt}/{train,val}/night/<sequence>/ with *_rgb_anon.png '
              'and *_gt_labelTrainIds.png (train has no labels)')
    PREPARE = ('download Dark_Zurich_train_anon and Dark_Zurich_val_anon and merge their '
               'rgb_anon and gt folders into data/dark_zurich (no conversion needed)')
