# GTA5 -> Cityscapes adaptation (DACS): labelled GTA source with rare-class sampling
# (uda_gta_source_512x512.py) plus unlabelled Cityscapes train images at 1024x512
# (uda_gta_targets_512x512.py); validation on Cityscapes val. `target_domains` chooses
# both (mmseg/apis/targets.py): another domain there replaces target and evaluation.
_base_ = ['./cityscapes_val_1024x512.py', './uda_gta_targets_512x512.py']
target_domains = ['cityscapes']
train_dataloader = dict(
    dataset=dict(type='UDADataset', target=_base_.uda_target_datasets.cityscapes))
