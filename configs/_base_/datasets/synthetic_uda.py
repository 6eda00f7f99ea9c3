# CPU demo data for adaptation: synthetic GTA source (rare-class sampling, 128x128 crops) plus
# unlabelled-for-training synthetic Cityscapes train images; validation on synthetic Cityscapes.
_base_ = ['./synthetic_val_domains.py']
crop_size = (128, 128)
train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UDADataset',
        source=dict(
            type='GTADataset',
            data_root='data/synthetic/gta/',
            data_prefix=dict(img_path='images', seg_map_path='labels'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='Resize', scale=(256, 144), keep_ratio=True),
                dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackSegInputs'),
            ]),
        target=dict(
            type='CityscapesDataset',
            data_root='data/synthetic/cityscapes/',
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='Resize', scale=(256, 128), keep_ratio=True),
                dict(type='RandomCrop', crop_size=crop_size),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackSegInputs'),
            ]),
        rare_class_sampling=dict(min_pixels=200, class_temp=0.01, min_crop_ratio=0.5)))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset={{_base_.synthetic_cityscapes_val}})
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
