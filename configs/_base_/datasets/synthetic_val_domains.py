# Validation sets of the synthetic data written by tools/make_synthetic_data.py
# (`python tools/make_synthetic_data.py --out data/synthetic`): the same dataset classes
# and layouts as the real ones, with images of 256x128 kept at their size.
synthetic_root = 'data/synthetic/'
synthetic_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
synthetic_cityscapes_val = dict(
    type='CityscapesDataset',
    data_root=synthetic_root + 'cityscapes/',
    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
    pipeline=synthetic_test_pipeline)
synthetic_acdc_val = dict(
    type='ACDCDataset',
    data_root=synthetic_root + 'acdc/',
    data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
    sub_dirs=['fog/val', 'night/val', 'rain/val', 'snow/val'],
    pipeline=synthetic_test_pipeline)
synthetic_dark_zurich_val = dict(
    type='DarkZurichDataset',
    data_root=synthetic_root + 'dark_zurich/',
    data_prefix=dict(img_path='rgb_anon/val', seg_map_path='gt/val'),
    pipeline=synthetic_test_pipeline)
synthetic_bdd100k_val = dict(
    type='BDD100KDataset',
    data_root=synthetic_root + 'bdd100k/',
    data_prefix=dict(img_path='images/10k/val', seg_map_path='labels/10k/val'),
    pipeline=synthetic_test_pipeline)
synthetic_mapillary_val = dict(
    type='MapillaryDataset',
    data_root=synthetic_root + 'mapillary/',
    data_prefix=dict(img_path='validation/images', seg_map_path='validation/labels'),
    pipeline=synthetic_test_pipeline)
synthetic_val_datasets = dict(
    cityscapes=synthetic_cityscapes_val,
    acdc=synthetic_acdc_val,
    dark_zurich=synthetic_dark_zurich_val,
    bdd100k=synthetic_bdd100k_val,
    mapillary=synthetic_mapillary_val)
# The candidates of `target_domains` (mmseg/apis/targets.py).
domain_datasets = synthetic_val_datasets
# Unlabelled test splits in the real layouts (tools/make_synthetic_data.py writes a few
# images each), for `tools/test.py ... --format-only`.
synthetic_unlabelled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='PackSegInputs'),
]
domain_test_datasets = dict(
    cityscapes=dict(
        type='CityscapesDataset',
        data_root=synthetic_root + 'cityscapes/',
        data_prefix=dict(img_path='leftImg8bit/test'),
        pipeline=synthetic_unlabelled_pipeline),
    acdc=dict(
        type='ACDCDataset',
        data_root=synthetic_root + 'acdc/',
        data_prefix=dict(img_path='rgb_anon'),
        sub_dirs=['fog/test', 'night/test', 'rain/test', 'snow/test'],
        pipeline=synthetic_unlabelled_pipeline),
    dark_zurich=dict(
        type='DarkZurichDataset',
        data_root=synthetic_root + 'dark_zurich/',
        data_prefix=dict(img_path='rgb_anon/test'),
        pipeline=synthetic_unlabelled_pipeline))
