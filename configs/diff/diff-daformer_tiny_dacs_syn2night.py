# CPU benchmark of DACS (experiment 70): tiny Stable Diffusion (tools/make_tiny_sd.py, random
# weights) + DIFF aggregation/finecoder + a narrow DAFormer head, trained on the synthetic
# GTA-like day source and adapted to the synthetic Dark-Zurich-like NIGHT target, evaluated on
# the night val set. Compare with diff-daformer_tiny_srconly_syn2night.py (same length).
# Data: python tools/make_synthetic_data.py --out data/synthetic
# Model: python tools/make_tiny_sd.py checkpoints/tiny-sd21
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_sepaspp_diff.py',
    # synthetic GTA source with rare-class sampling, 128x128 crops (the target is replaced below)
    '../_base_/datasets/synthetic_uda.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw.py',
    '../_base_/schedules/poly10warm.py',
]
seed = 0
# 800 iterations of batch 2: about 7 min (DACS) / 3 min (source-only) on one CPU thread.
iterations = 800
# DIFF on the tiny SD: narrow outputs (GN16 bottlenecks of 16/32/32 channels) and a short
# 3-step inversion (t = 0, 4, 14) keeping the features at t = 14 and 4.
tiny_backbone = dict(
    type='DIFF',
    diff_config='diff_config.yaml',
    overrides=dict(model_id='checkpoints/tiny-sd21', projection_channels=[64, 128, 128],
                   stride4_channels=32, timesteps=[30, 14, 4], saved_steps=[2, 1]))
tiny_head = dict(
    _base_.model.decode_head,
    in_channels=[32, 64, 128, 128],
    channels=64,
    decoder_params=dict(embed_dims=64, fusion_cfg=dict(dilations=(1, 6, 12, 18), sep=True)))
# IPKL's second backbone pass is switched off here to afford the iterations; it would act on
# the source batch of both arms alike (the GTA configs keep it).
model = dict(
    _base_.uda,
    _delete_=True,
    model=dict(_base_.model, backbone=tiny_backbone, decode_head=tiny_head,
               train_cfg=dict(ipkl=dict(enabled=False, consistency_weight=1.0))),
    max_iters=iterations,
    debug_img_interval=100)
# Target: the synthetic night images (Dark Zurich layout, train split unlabelled), evaluated on
# the night val set. The one key that chooses adaptation target and evaluation
# (mmseg/apis/targets.py; `run_experiments.py --exp 70 --target acdc`); the lines below are what
# it resolves to.
target_domains = ['dark_zurich']
night_train = dict(
    type='DarkZurichDataset',
    data_root='data/synthetic/dark_zurich/',
    data_prefix=dict(img_path='rgb_anon/train'),
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(256, 128), keep_ratio=True),
        dict(type='RandomCrop', crop_size=(128, 128)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackSegInputs'),
    ])
train_dataloader = dict(batch_size=2, dataset=dict(target=dict(night_train, _delete_=True)))
val_dataloader = dict(dataset=dict(_base_.synthetic_dark_zurich_val, _delete_=True))
test_dataloader = val_dataloader
# A short run: the release's schedule shape (warm-up = 3.75 % of the run, then linear decay
# to 0) with a 10x larger learning rate, since the tiny model starts from scratch.
optim_wrapper = dict(optimizer=dict(lr=6e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-06, end_factor=1.0, by_epoch=False, begin=0,
         end=16),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=iterations + 1),
]
train_cfg = dict(max_iters=iterations, val_interval=iterations)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=iterations, max_keep_ckpts=1))
