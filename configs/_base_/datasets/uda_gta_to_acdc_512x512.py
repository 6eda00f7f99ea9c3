# GTA5 -> ACDC adaptation (DACS): GTA source with rare-class sampling plus ACDC train images
# of all four conditions, resized to 960x540 as in the release's cs2acdc target pipeline;
# validation on ACDC val at 960x540.
_base_ = ['./acdc_val_960x540.py']
crop_size = (512, 512)
source_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
target_train_pipeline = [
    dict(type='LoadImageFromFile'),
    # target labels are loaded only for monitoring; training never uses them
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(960, 540), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UDADataset',
        source=dict(
            type='GTADataset',
            data_root='data/gta/',
            data_prefix=dict(img_path='images', seg_map_path='labels'),
            pipeline=source_train_pipeline),
        target=dict(
            type='ACDCDataset',
            data_root='data/acdc/',
            data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
            sub_dirs=['fog/train', 'night/train', 'rain/train', 'snow/train'],
            pipeline=target_train_pipeline),
        rare_class_sampling=dict(min_pixels=3000, class_temp=0.01, min_crop_ratio=0.5)))
