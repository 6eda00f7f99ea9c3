# GTA5 source (uda_gta_source_512x512.py) plus the candidate adaptation targets: one train set
# per domain in `uda_target_datasets`. The DACS configs choose one with
# `target_domains = ['<domain>']` (mmseg/apis/targets.py), which also names the evaluation
# domains; the uda_gta_to_*_512x512.py files fix the release's three choices.
_base_ = ['./uda_gta_source_512x512.py']


def _target_pipeline(scale, labels, crop_size):
    # a function: mmengine leaves it out of the resolved config. Target labels, where loaded,
    # serve only for monitoring; training never uses them.
    return [dict(type='LoadImageFromFile')] + ([dict(type='LoadAnnotations')] if labels else []) \
        + [
            dict(type='Resize', scale=scale, keep_ratio=True),
            dict(type='RandomCrop', crop_size=crop_size),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs'),
        ]


uda_target_datasets = dict(
    # Cityscapes train (2975 images) at 1024x512.
    cityscapes=dict(
        type='CityscapesDataset',
        data_root='data/cityscapes/',
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=_target_pipeline((1024, 512), labels=True, crop_size=_base_.crop_size)),
    # ACDC train of all four conditions at 960x540, as in the release's cs2acdc pipeline.
    acdc=dict(
        type='ACDCDataset',
        data_root='data/acdc/',
        data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
        sub_dirs=['fog/train', 'night/train', 'rain/train', 'snow/train'],
        pipeline=_target_pipeline((960, 540), labels=True, crop_size=_base_.crop_size)),
    # Dark Zurich night train (no labels) at 960x540 (release target scale).
    dark_zurich=dict(
        type='DarkZurichDataset',
        data_root='data/dark_zurich/',
        data_prefix=dict(img_path='rgb_anon/train/night'),
        pipeline=_target_pipeline((960, 540), labels=False, crop_size=_base_.crop_size)),
    # BDD100K train (7000 images of the 10k set) at 1280x720 (our choice, no release config).
    bdd100k=dict(
        type='BDD100KDataset',
        data_root='data/bdd100k/',
        data_prefix=dict(img_path='images/10k/train'),
        pipeline=_target_pipeline((1280, 720), labels=False, crop_size=_base_.crop_size)),
    # Mapillary training images, keep-ratio into 1024x512 (our choice, no release config).
    mapillary=dict(
        type='MapillaryDataset',
        data_root='data/mapillary/',
        data_prefix=dict(img_path='training/images'),
        pipeline=_target_pipeline((1024, 512), labels=False, crop_size=_base_.crop_size)))
