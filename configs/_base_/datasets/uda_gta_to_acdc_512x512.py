# GTA5 -> ACDC adaptation (DACS): GTA source with rare-class sampling (uda_gta_source_512x512.py)
# plus ACDC train images of all four conditions, resized to 960x540 as in the release's cs2acdc
# target pipeline; validation on ACDC val at 960x540.
_base_ = ['./acdc_val_960x540.py', './uda_gta_source_512x512.py']
target_train_pipeline = [
    dict(type='LoadImageFromFile'),
    # target labels are loaded only for monitoring; training never uses them
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(960, 540), keep_ratio=True),
    dict(type='RandomCrop', crop_size=_base_.crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        type='UDADataset',
        target=dict(
            type='ACDCDataset',
            data_root='data/acdc/',
            data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
            sub_dirs=['fog/train', 'night/train', 'rain/train', 'snow/train'],
            pipeline=target_train_pipeline)))
