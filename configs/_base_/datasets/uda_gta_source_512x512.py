# GTA5 source of the GTA -> X adaptation (DACS) data configs: labelled GTA crops with rare-class
# sampling. On its own a source-only loader (DGDataset); the uda_gta_to_*_512x512.py files
# inherit it, turn it into a UDADataset and add only their target and validation set. As in the
# release's uda_gta_to_cityscapes_512x512.py there is no photometric distortion: DACS jitters
# colours.
crop_size = (512, 512)
source_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='DGDataset',
        source=dict(
            type='GTADataset',
            data_root='data/gta/',
            data_prefix=dict(img_path='images', seg_map_path='labels'),
            pipeline=source_train_pipeline),
        rare_class_sampling=dict(min_pixels=3000, class_temp=0.01, min_crop_ratio=0.5)))
