# Validation sets of the five domain-generalisation benchmarks (GTA -> each), one dataset
# dict per domain; `dg_val_datasets` maps the domain name to its dataset for a loop that
# evaluates all of them. Labels are loaded after the resize: the metric compares
# predictions (resized back to the original size) with the full-resolution labels.


def _test_pipeline(scale, labels=True):
    # a function: mmengine leaves it out of the resolved config; labels=False for the
    # unlabelled test splits (no annotation loading)
    return [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=scale, keep_ratio=True),
    ] + ([dict(type='LoadAnnotations')] if labels else []) + [dict(type='PackSegInputs')]


# Cityscapes val, 500 images 2048x1024 -> 1024x512 (release, docs/method.md §5.4).
cityscapes_val = dict(
    type='CityscapesDataset',
    data_root='data/cityscapes/',
    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
    pipeline=_test_pipeline((1024, 512)))
# ACDC val, 406 images 1920x1080 of fog/night/rain/snow -> 960x540 (the release's ACDC test
# scale; the model pads to a multiple of 64 and crops back, docs/differences.md §3).
acdc_val = dict(
    type='ACDCDataset',
    data_root='data/acdc/',
    data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
    sub_dirs=['fog/val', 'night/val', 'rain/val', 'snow/val'],
    pipeline=_test_pipeline((960, 540)))
# Dark Zurich val, 50 night images 1920x1080 -> 960x540 (release test scale).
dark_zurich_val = dict(
    type='DarkZurichDataset',
    data_root='data/dark_zurich/',
    data_prefix=dict(img_path='rgb_anon/val', seg_map_path='gt/val'),
    pipeline=_test_pipeline((960, 540)))
# BDD100K val, 1000 images 1280x720, kept at their size (no release config exists; our choice).
bdd100k_val = dict(
    type='BDD100KDataset',
    data_root='data/bdd100k/',
    data_prefix=dict(img_path='images/10k/val', seg_map_path='labels/10k/val'),
    pipeline=_test_pipeline((1280, 720)))
# Mapillary Vistas val, 2000 images of many sizes, keep-ratio into 1024x512 like Cityscapes
# (no release config exists; our choice).
mapillary_val = dict(
    type='MapillaryDataset',
    data_root='data/mapillary/',
    data_prefix=dict(img_path='validation/images', seg_map_path='validation/labels'),
    pipeline=_test_pipeline((1024, 512)))
dg_val_datasets = dict(
    cityscapes=cityscapes_val,
    acdc=acdc_val,
    dark_zurich=dark_zurich_val,
    bdd100k=bdd100k_val,
    mapillary=mapillary_val)
# The candidates of `target_domains` (mmseg/apis/targets.py): a config that sets
# target_domains = ['acdc', ...] evaluates these sets, named after their domain.
domain_datasets = dg_val_datasets
# Unlabelled test splits of the three benchmarks with a test server, for
# `tools/test.py CONFIG CKPT --format-only --out DIR` (docs/test-servers.md): Cityscapes test
# (1525 images), ACDC test (all four conditions) and Dark Zurich test (151 night images).
domain_test_datasets = dict(
    cityscapes=dict(
        type='CityscapesDataset',
        data_root='data/cityscapes/',
        data_prefix=dict(img_path='leftImg8bit/test'),
        pipeline=_test_pipeline((1024, 512), labels=False)),
    acdc=dict(
        type='ACDCDataset',
        data_root='data/acdc/',
        data_prefix=dict(img_path='rgb_anon'),
        sub_dirs=['fog/test', 'night/test', 'rain/test', 'snow/test'],
        pipeline=_test_pipeline((960, 540), labels=False)),
    dark_zurich=dict(
        type='DarkZurichDataset',
        data_root='data/dark_zurich/',
        data_prefix=dict(img_path='rgb_anon/test'),
        pipeline=_test_pipeline((960, 540), labels=False)))
# Images per evaluation batch, every domain (target_domains copies the val/test loader
# settings to each domain; tools/test.py --batch-size N overrides it). Predictions do not
# depend on it: each image has its own seeded noise (docs/differences.md §1).
eval_batch_size = 1
# Loader and metric shared by the per-domain val configs: one worker, fixed order.
val_loader = dict(
    batch_size=eval_batch_size,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False))
miou_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
