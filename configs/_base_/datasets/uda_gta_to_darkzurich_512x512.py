# GTA5 -> Dark Zurich adaptation (DACS): GTA source with rare-class sampling
# (uda_gta_source_512x512.py) plus the unlabelled Dark Zurich night train images at 960x540
# (release target scale); validation on Dark Zurich val at 960x540.
_base_ = ['./dark_zurich_val_960x540.py', './uda_gta_source_512x512.py']
target_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(960, 540), keep_ratio=True),
    dict(type='RandomCrop', crop_size=_base_.crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
# Dark Zurich train has no labels: the dataset is built without seg_map_path
train_dataloader = dict(
    dataset=dict(
        type='UDADataset',
        target=dict(
            type='DarkZurichDataset',
            data_root='data/dark_zurich/',
            data_prefix=dict(img_path='rgb_anon/train/night'),
            pipeline=target_train_pipeline)))
