"""User-facing entry points: build a trained model, segment images, train, test."""
from .config import default_work_dir, git_revision, load_config, unique_experiment_name
from .inference import (find_images, inference_model, init_model, load_weights,
                        segmentor_config, test_pipeline_config)
from .preflight import MissingInputError, check_data, check_inputs, check_weights
from .train import build_runner, last_val_metrics, prepare_train_config, train

__all__ = [
    'default_work_dir', 'git_revision', 'load_config', 'unique_experiment_name', 'find_images',
    'inference_model', 'init_model', 'load_weights', 'segmentor_config', 'test_pipeline_config',
    'MissingInputError', 'check_data', 'check_inputs', 'check_weights', 'build_runner',
    'last_val_metrics', 'prepare_train_config', 'train'
]
