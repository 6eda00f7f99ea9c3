# CPU demo data for adaptation: synthetic GTA source (rare-class sampling, 128x128 crops;
# synthetic_gta_source.py) plus unlabelled-for-training synthetic Cityscapes train images;
# validation on synthetic Cityscapes. `uda_target_datasets` holds the candidate targets (the
# train split of every synthetic domain) that `target_domains` chooses from
# (mmseg/apis/targets.py).
_base_ = ['./synthetic_gta_source.py']


def _target_pipeline(labels, crop_size):
    # a function: mmengine leaves it out of the resolved config; target labels, where
    # loaded, serve only for monitoring
    return [dict(type='LoadImageFromFile')] + ([dict(type='LoadAnnotations')] if labels else []) \
        + [
            dict(type='Resize', scale=(256, 128), keep_ratio=True),
            dict(type='RandomCrop', crop_size=crop_size),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs'),
        ]


uda_target_datasets = dict(
    cityscapes=dict(
        type='CityscapesDataset',
        data_root='data/synthetic/cityscapes/',
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=_target_pipeline(True, _base_.crop_size)),
    acdc=dict(
        type='ACDCDataset',
        data_root='data/synthetic/acdc/',
        data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
        sub_dirs=['fog/train', 'night/train', 'rain/train', 'snow/train'],
        pipeline=_target_pipeline(True, _base_.crop_size)),
    dark_zurich=dict(
        type='DarkZurichDataset',
        data_root='data/synthetic/dark_zurich/',
        data_prefix=dict(img_path='rgb_anon/train'),
        pipeline=_target_pipeline(False, _base_.crop_size)),
    bdd100k=dict(
        type='BDD100KDataset',
        data_root='data/synthetic/bdd100k/',
        data_prefix=dict(img_path='images/10k/train'),
        pipeline=_target_pipeline(False, _base_.crop_size)),
    mapillary=dict(
        type='MapillaryDataset',
        data_root='data/synthetic/mapillary/',
        data_prefix=dict(img_path='training/images'),
        pipeline=_target_pipeline(False, _base_.crop_size)))
train_dataloader = dict(
    dataset=dict(type='UDADataset', target=uda_target_datasets['cityscapes']))
