# GTA5 -> Cityscapes adaptation (DACS): labelled GTA source with rare-class sampling
# (uda_gta_source_512x512.py) plus unlabelled Cityscapes train images; validation on
# Cityscapes val.
_base_ = ['./cityscapes_val_1024x512.py', './uda_gta_source_512x512.py']
target_train_pipeline = [
    dict(type='LoadImageFromFile'),
    # target labels are loaded only for monitoring; training never uses them
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='RandomCrop', crop_size=_base_.crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        type='UDADataset',
        target=dict(
            type='CityscapesDataset',
            data_root='data/cityscapes/',
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline=target_train_pipeline)))
