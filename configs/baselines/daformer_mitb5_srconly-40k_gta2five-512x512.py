# Experiment 90: the standard-backbone baseline of exp 51 -- DAFormer's domain-generalisation
# baseline, MiT-B5 (ImageNet) with the DAFormer sep-ASPP head, trained on GTA with exactly
# exp 51's data (1280x720 resize, 512x512 crops, flip, photometric distortion, rare-class
# sampling T=0.01), schedule (40k iterations, batch 1, AdamW 6e-5, head lr x10, poly with
# 1500 warm-up iterations, grad-norm clip 5) and five-domain evaluation. Published reference:
# DAFormer-DG 52.65 mIoU on Cityscapes val (GTA source, DGInStyle's table).
# Differences, all DAFormer's: the encoder is trained; plain cross-entropy (no IPKL); norm
# layers without weight decay.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_sepaspp_mitb5.py',
    '../_base_/datasets/gta_512x512.py',
    '../_base_/schedules/adamw.py',
    '../_base_/schedules/poly10warm.py',
]
seed = 0
randomness = dict(seed=0)
# DAFormer's paramwise_cfg: head lr x10; no weight decay on `norm` (every LayerNorm of the
# transformers MiT matches) or `pos_block` (a name of mmseg's MiT; nothing matches here).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(
    head=dict(lr_mult=10.0), pos_block=dict(decay_mult=0.0), norm=dict(decay_mult=0.0))))
# Exp 51's five validation domains, written as exp 51 writes them.
target_domains = ['cityscapes', 'acdc', 'dark_zurich', 'bdd100k', 'mapillary']
val_loader_defaults = dict(batch_size=1, num_workers=1, persistent_workers=True,
                           sampler=dict(type='DefaultSampler', shuffle=False))
extra_domains = dict(
    acdc=dict(val_loader_defaults, dataset=_base_.acdc_val),
    dark_zurich=dict(val_loader_defaults, dataset=_base_.dark_zurich_val),
    bdd100k=dict(val_loader_defaults, dataset=_base_.bdd100k_val),
    mapillary=dict(val_loader_defaults, dataset=_base_.mapillary_val))
val_cfg = dict(type='MultiValLoop', domain='cityscapes', extra_domains=extra_domains)
test_cfg = dict(type='MultiTestLoop', domain='cityscapes', extra_domains=extra_domains)
