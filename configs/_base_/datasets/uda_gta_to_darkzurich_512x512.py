# GTA5 -> Dark Zurich adaptation (DACS): GTA source with rare-class sampling
# (uda_gta_source_512x512.py) plus the unlabelled Dark Zurich night train images at 960x540
# (release target scale; uda_gta_targets_512x512.py); validation on Dark Zurich val at 960x540.
# `target_domains` chooses both (mmseg/apis/targets.py).
_base_ = ['./dark_zurich_val_960x540.py', './uda_gta_targets_512x512.py']
target_domains = ['dark_zurich']
train_dataloader = dict(
    dataset=dict(type='UDADataset', target=_base_.uda_target_datasets.dark_zurich))
