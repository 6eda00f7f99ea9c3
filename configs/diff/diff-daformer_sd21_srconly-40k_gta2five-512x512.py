# Experiment 51: the release's training (experiment 50) evaluated on all five validation
# sets of the paper's domain-generalisation protocol in one run and one table:
# Cityscapes (1024x512), ACDC and Dark Zurich (960x540, padded to multiples of 64 for DIFF and
# cropped back), BDD100K (1280x720) and Mapillary (keep-ratio into 1024x512).
# Metrics are named '<domain>/mIoU'; see _base_/datasets/dg_val_domains.py for the sets.
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2cs-512x512.py']
# The one key that chooses the domains (mmseg/apis/targets.py); the loops below are what it
# resolves to (written out for readers of the raw file).
target_domains = ['cityscapes', 'acdc', 'dark_zurich', 'bdd100k', 'mapillary']
# Shared settings of the extra domains' dataloaders (batch 1, fixed order).
val_loader_defaults = dict(batch_size=1, num_workers=1, persistent_workers=True,
                           sampler=dict(type='DefaultSampler', shuffle=False))
extra_domains = dict(
    acdc=dict(val_loader_defaults, dataset=_base_.acdc_val),
    dark_zurich=dict(val_loader_defaults, dataset=_base_.dark_zurich_val),
    bdd100k=dict(val_loader_defaults, dataset=_base_.bdd100k_val),
    mapillary=dict(val_loader_defaults, dataset=_base_.mapillary_val))
val_cfg = dict(type='MultiValLoop', domain='cityscapes', extra_domains=extra_domains)
test_cfg = dict(type='MultiTestLoop', domain='cityscapes', extra_domains=extra_domains)
