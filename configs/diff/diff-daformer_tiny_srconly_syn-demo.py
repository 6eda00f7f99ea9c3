# Experiment 0, the CPU demo: the method of experiment 50 (DIFF features + IPKL, DAFormer
# sep-ASPP head, AdamW, warm-up + linear decay) at toy scale, on data and weights created
# on first use by run_experiments.py:
#   checkpoints/tiny-sd21  tools/make_tiny_sd.py: SD-2.1-shaped UNet/VAE/CLIP, random weights
#   data/synthetic         tools/make_synthetic_data.py: GTA-like source, Cityscapes-, ACDC-
#                          and Dark-Zurich-like targets in the real layouts
# It trains on the synthetic GTA source only and evaluates on the three synthetic target
# domains (one table), writing prediction overlays under <work_dir>/predictions/.
# Runs in a few minutes on 2 CPU cores. The numbers only show that the pipeline learns;
# they say nothing about DIFF with real Stable Diffusion weights.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_sepaspp_diff.py',
    # synthetic GTA 256x144, 128x128 crops, flip, photometric distortion, RCS
    '../_base_/datasets/synthetic_dg.py',
    '../_base_/schedules/adamw.py',
    '../_base_/schedules/poly10warm.py',
]
seed = 0
randomness = dict(seed=0)
max_iters = 400
model = dict(
    backbone=dict(overrides=dict(
        # the tiny random SD folder (relative to diff_config.yaml, i.e. the repository root)
        model_id='checkpoints/tiny-sd21',
        # 3 inversion steps instead of 37; features kept at steps 2 and 1 (t = 8 and 4)
        timesteps=[20, 8, 4],
        saved_steps=[2, 1],
        # narrow trainable parts: stride 8/16/32 widths and the stride-4 width
        projection_channels=[64, 128, 128],
        stride4_channels=32)),
    decode_head=dict(in_channels=[32, 64, 128, 128], channels=64,
                     decoder_params=dict(embed_dims=64)))
# A short run needs a larger step than the release's 6e-5 (head 6e-4).
optim_wrapper = dict(optimizer=dict(lr=6e-04))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-06, end_factor=1.0, by_epoch=False, begin=0, end=21),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1),
]
train_dataloader = dict(batch_size=2)
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# Evaluate the synthetic target domains; metrics are named '<domain>/mIoU'. The one key that
# chooses them (mmseg/apis/targets.py; also bdd100k, mapillary or 'all'); the loops below are
# what it resolves to.
target_domains = ['cityscapes', 'acdc', 'dark_zurich']
val_loader_defaults = dict(batch_size=1, num_workers=0, persistent_workers=False,
                           sampler=dict(type='DefaultSampler', shuffle=False))
extra_domains = dict(
    acdc=dict(val_loader_defaults, dataset=_base_.synthetic_acdc_val),
    dark_zurich=dict(val_loader_defaults, dataset=_base_.synthetic_dark_zurich_val))
val_cfg = dict(type='MultiValLoop', domain='cityscapes', extra_domains=extra_domains)
test_cfg = dict(type='MultiTestLoop', domain='cityscapes', extra_domains=extra_domains)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters))
log_processor = dict(window_size=20)
# figures (image | ground truth | prediction | errors) of 4 images per domain
custom_hooks = [dict(type='SegPredictionWriterHook', max_per_domain=4)]
