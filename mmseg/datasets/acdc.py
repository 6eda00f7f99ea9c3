"""ACDC (adverse conditions: fog, night, rain, snow); labels are released as train ids."""
from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class ACDCDataset(BaseSegDataset):
    """ACDC (adverse conditions: fog, night, rain, snow); labels are released as train ids.

    Images ``*_rgb_anon.png``, labels ``*_gt_labelTrainIds.png``. Args as :class:`BaseSegDataset`.
    ``metainfo['subsets']`` names the conditions it holds (from ``sub_dirs`` such as
    ``fog/val``), so the IoU metric also reports ``fog/mIoU``, ``night/mIoU``, ...
    """

    CONDITIONS = ('fog', 'night', 'rain', 'snow')
    IMG_SUFFIX = '_rgb_anon.png'
    SEG_MAP_SUFFIX = '_gt_labelTrainIds.png'
    DEFAULT_PREFIX = dict(img_path='rgb_anon', seg_map_path='gt')
    LAYOUT = ('data/acdc/{rgb_anon,gt}/<condition>/{train,val}/<sequence>/ with *_rgb_anon.png '
              'and *_gt_labelTrainIds.png')
    PREPARE = ('download rgb_anon and gt from acdc.vision.ee.ethz.ch and unpack both into '
               'data/acdc (no conversion needed)')

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        heads = [sub.replace('\\', '/').split('/')[0] for sub in self.sub_dirs or []]
        self._metainfo['subsets'] = tuple(c for c in self.CONDITIONS if c in heads) \
            if heads else self.CONDITIONS
