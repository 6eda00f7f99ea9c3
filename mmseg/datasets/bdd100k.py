"""BDD100K semantic segmentation (10k images); labels are released as train ids."""
from typing import Dict

from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class BDD100KDataset(BaseSegDataset):
    """BDD100K semantic segmentation (10k images); labels are released as train ids.

    Images ``*.jpg``, labels ``*_train_id.png``. Args as :class:`BaseSegDataset`.
    """

    LAYOUT = 'data/bdd100k/{images,labels}/10k/{train,val}/ with *.jpg and *_train_id.png'
    PREPARE = ('download bdd100k_sem_seg_labels_trainval and the 10k images and unpack them into '
               'data/bdd100k (no conversion needed)')

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '_train_id.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def default_prefix(cls) -> Dict[str, str]:
        return dict(img_path='images/10k/val', seg_map_path='labels/10k/val')
