# CPU demo data: source-only training on synthetic GTA (256x144 images, 128x128 crops) with
# the exp-50 augmentations and rare-class sampling, validation on synthetic Cityscapes
# (synthetic_gta_source.py).
_base_ = ['./synthetic_gta_source.py']
synthetic_gta_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(256, 144), keep_ratio=True),
    dict(type='RandomCrop', crop_size=_base_.crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(source=dict(pipeline=synthetic_gta_train_pipeline)))
