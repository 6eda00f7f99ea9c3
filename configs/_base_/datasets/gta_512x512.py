# Experiment 50 data (docs/method.md §2.4, §4.2, §5.4): source-only training on GTA5 with
# rare-class sampling and photometric distortion ("gtaCAug"), validation on Cityscapes val.
_base_ = ['./cityscapes_val_1024x512.py']
crop_size = (512, 512)
gta_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # 1914x1052 -> 1280x704: factor min(1280/long, 720/short)
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    # up to 10 re-draws until no class covers >= 75% of the non-ignored pixels
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    # brightness +-32, contrast and saturation [0.5, 1.5], hue +-18, each p=0.5
    dict(type='PhotoMetricDistortion'),
    # BGR uint8; RGB in [-1, 1] and padding to crop_size happen in the data preprocessor
    dict(type='PackSegInputs'),
]
gta_train = dict(
    type='GTADataset',
    data_root='data/gta/',
    data_prefix=dict(img_path='images', seg_map_path='labels'),
    pipeline=gta_train_pipeline)
train_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    # iteration-based training: no 2 s pause per epoch (docs/pitfalls.md #5)
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='DGDataset',
        source=gta_train,
        # rcs_T = 0.01; files with > 3000 pixels of the class; crop must keep > 1500
        rare_class_sampling=dict(min_pixels=3000, class_temp=0.01, min_crop_ratio=0.5)))
