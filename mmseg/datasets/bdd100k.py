"""BDD100K semantic segmentation (10k images); labels are released as train ids."""
from mmseg.registry import DATASETS

from .basesegdataset import BaseSegDataset


@DATASETS.register_module()
class BDD100KDataset(BaseSegDataset):
    """BDD100K semantic segmentation (10k images); labels are released as train ids.

    Images ``*.jpg``, labels ``*_train_id.png``. Args as :class:`BaseSegDataset`.
    """

    IMG_SUFFIX = '.jpg'
    SEG_MAP_SUFFIX = '_train_id.png'
    DEFAULT_PREFIX = dict(img_path='images/10k/val', seg_map_path='labels/10k/val')
    LAYOUT = 'data/bdd100k/{images,labels}/10k/{train,val}/ with *.jpg and *_train_id.png'
    PREPARE = ('download bdd100k_sem_seg_labels_trainval and the 10k images and unpack them into '
               'data/bdd100k (no conversion needed)')
