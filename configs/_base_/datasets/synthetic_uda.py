# CPU demo data for adaptation: synthetic GTA source (rare-class sampling, 128x128 crops;
# synthetic_gta_source.py) plus unlabelled-for-training synthetic Cityscapes train images;
# validation on synthetic Cityscapes.
_base_ = ['./synthetic_gta_source.py']
train_dataloader = dict(
    dataset=dict(
        type='UDADataset',
        target=dict(
            type='CityscapesDataset',
            data_root='data/synthetic/cityscapes/',
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='Resize', scale=(256, 128), keep_ratio=True),
                dict(type='RandomCrop', crop_size=_base_.crop_size),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackSegInputs'),
            ])))
