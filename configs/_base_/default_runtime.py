# Runtime shared by every config: mmengine Runner settings, logging, checkpoints.
# `SafeRunner` writes checkpoints holding only plain types and tensors, atomically,
# and loads them with torch.load(weights_only=True) (mmseg/engine/runner.py).
default_scope = 'mmseg'
runner_type = 'SafeRunner'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
# No fixed `name`: mmengine keeps one Visualizer per name per process, so a second run
# in the same process (run_experiments, tests) would log into the first run's folder.
# tools/train.py gives every run a unique experiment_name, which names it.
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
# Loss values are logged every `LoggerHook.interval` iterations (window mean).
log_processor = dict(by_epoch=False, window_size=50)
log_level = 'INFO'
# False: the environment report, resolved config and hook order go to the log file only
# (`--verbose` on tools/train.py, tools/test.py and run_experiments.py sets it).
verbose = False
# Which checkpoint a run hands on: 'last' (the release's choice) or 'best:<domain>/mIoU',
# e.g. 'best:cityscapes/mIoU' (also keeps best_*.pth). Selecting on a target domain's
# validation set uses its labels: model selection on the target, not domain generalisation.
checkpoint_selection = 'last'
load_from = None
resume = False
# Seed 0 as released (docs/method.md §4.3); `tools/train.py --seed` overrides it.
randomness = dict(seed=0, deterministic=False)
