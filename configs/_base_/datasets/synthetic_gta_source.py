# CPU demo data shared by synthetic_dg.py and synthetic_uda.py: synthetic GTA source (256x144
# images, 128x128 crops) with rare-class sampling, validation on synthetic Cityscapes. On its
# own a source-only loader without photometric distortion; synthetic_dg.py sets the exp-50
# augmentations, synthetic_uda.py turns it into a UDADataset with a target.
# min_pixels is scaled to the small images (the release's 3000 is for 1280x720 GTA).
_base_ = ['./synthetic_val_domains.py']
crop_size = (128, 128)
train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='DGDataset',
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
        rare_class_sampling=dict(min_pixels=200, class_temp=0.01, min_crop_ratio=0.5)))
# Images per evaluation batch (every domain's loader copies it; tools/test.py --batch-size).
eval_batch_size = 1
val_dataloader = dict(
    batch_size=eval_batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset={{_base_.synthetic_cityscapes_val}})
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
