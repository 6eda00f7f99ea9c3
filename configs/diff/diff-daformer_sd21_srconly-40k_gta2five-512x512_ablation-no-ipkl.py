# Experiment 86 (ablation): exp 51 without IPKL: a single label-free backbone pass per
# iteration with one cross-entropy loss (no label-steered pass, no consistency term), so
# path control is never used in training. Everything else is exp 51's.
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(train_cfg=dict(ipkl=dict(enabled=False)))
