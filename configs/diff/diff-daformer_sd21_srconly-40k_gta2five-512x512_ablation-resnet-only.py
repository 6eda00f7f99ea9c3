# Experiment 82 (ablation): exp 51 with ResNet features only, the release's `idxs_ca: []`
# (docs/method.md §11.1): the 12 up-block ResNets are recorded, no transformer block. The
# aggregation input widths shrink accordingly (derived from the UNet); the output widths and
# the head are unchanged. Everything else is exp 51's.
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(backbone=dict(overrides=dict(transformer_indices=[])))
