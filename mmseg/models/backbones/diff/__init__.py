"""DIFF: frozen Stable Diffusion features for semantic segmentation (arXiv 2406.00777).

A self-contained package: it imports only the standard library, torch, diffusers,
transformers and yaml, so the folder can be copied into any project. See README.md.
"""
from .aggregation import BottleneckBlock, DirectAggregation, MixingAggregation
from .components import SDComponents, WeightsNotFoundError, load_sd_components
from .config import ConfigError, DIFFConfig
from .encoder import DIFFEncoder
from .extractor import DiffusionFeatureExtractor, Trajectory, UNetUsage
from .finecoder import Finecoder
from .fingerprint import fingerprint_sd_folder
from .reference import release_features

__all__ = [
    'BottleneckBlock', 'ConfigError', 'DIFFConfig', 'DIFFEncoder', 'DiffusionFeatureExtractor',
    'DirectAggregation', 'Finecoder', 'MixingAggregation', 'SDComponents', 'Trajectory',
    'UNetUsage', 'WeightsNotFoundError', 'fingerprint_sd_folder', 'load_sd_components',
    'release_features'
]
