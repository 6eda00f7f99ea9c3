"""Training engine: optimiser constructor, multi-domain loops, safe checkpoints, hooks."""
from .checkpoint import (CheckpointMismatchError, load_checkpoint_safe, load_state_dict_strict,
                         save_checkpoint_atomic)
from .checkpoint_hook import SegCheckpointHook, parse_selection
from .dist import cpu_ddp_needed, cpu_model_wrapper_cfg, init_cpu_process_group
from .hooks import SegPredictionWriterHook, write_prediction_images
from .loops import MultiTestLoop, MultiValLoop, ResumableIterBasedTrainLoop, format_domain_table
from .optimizers import TrainableOptimWrapperConstructor
from .rng import capture_rng_state, preserved_rng_state, restore_rng_state
from .runner import SafeRunner

__all__ = [
    'CheckpointMismatchError', 'load_checkpoint_safe', 'load_state_dict_strict',
    'save_checkpoint_atomic', 'cpu_ddp_needed', 'cpu_model_wrapper_cfg', 'init_cpu_process_group',
    'SegPredictionWriterHook', 'write_prediction_images', 'MultiTestLoop', 'MultiValLoop',
    'ResumableIterBasedTrainLoop', 'format_domain_table', 'TrainableOptimWrapperConstructor',
    'SafeRunner', 'SegCheckpointHook', 'parse_selection', 'capture_rng_state',
    'preserved_rng_state', 'restore_rng_state'
]
