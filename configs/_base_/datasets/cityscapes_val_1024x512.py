# Cityscapes validation (and test) dataloader and mIoU evaluator; the dataset is defined once
# in dg_val_domains.py. Batch 1, one worker, fixed order.
_base_ = ['./dg_val_domains.py']
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset={{_base_.cityscapes_val}})
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
