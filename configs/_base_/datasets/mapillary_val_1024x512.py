# Mapillary validation (and test) dataloader and mIoU evaluator; the dataset is defined once
# with the loader settings in dg_val_domains.py.
_base_ = ['./dg_val_domains.py']
val_dataloader = dict(_base_.val_loader, dataset=_base_.mapillary_val)
test_dataloader = val_dataloader
val_evaluator = _base_.miou_evaluator
test_evaluator = val_evaluator
