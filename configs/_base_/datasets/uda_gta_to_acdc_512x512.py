# GTA5 -> ACDC adaptation (DACS): GTA source with rare-class sampling (uda_gta_source_512x512.py)
# plus ACDC train images of all four conditions, resized to 960x540 as in the release's cs2acdc
# target pipeline (uda_gta_targets_512x512.py); validation on ACDC val at 960x540.
# `target_domains` chooses both (mmseg/apis/targets.py).
_base_ = ['./acdc_val_960x540.py', './uda_gta_targets_512x512.py']
target_domains = ['acdc']
train_dataloader = dict(
    dataset=dict(type='UDADataset', target=_base_.uda_target_datasets.acdc))
