"""Datasets (registered in ``mmseg.registry.DATASETS``) and their transforms."""
from . import transforms  # noqa: F401  (registers the transforms)
from .acdc import ACDCDataset
from .basesegdataset import BaseSegDataset
from .bdd100k import BDD100KDataset
from .cityscapes import CityscapesDataset
from .dark_zurich import DarkZurichDataset
from .gta import GTADataset
from .mapillary import MapillaryDataset
from .rare_class_sampling import RareClassSampler, rcs_class_probs
from .synthia import SynthiaDataset
from .uda_dataset import DGDataset, UDADataset

__all__ = [
    'BaseSegDataset', 'CityscapesDataset', 'GTADataset', 'SynthiaDataset', 'ACDCDataset',
    'DarkZurichDataset', 'BDD100KDataset', 'MapillaryDataset', 'UDADataset', 'DGDataset',
    'RareClassSampler', 'rcs_class_probs'
]
