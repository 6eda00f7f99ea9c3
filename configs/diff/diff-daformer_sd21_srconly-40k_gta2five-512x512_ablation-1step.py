# Experiment 81 (ablation): exp 51 with the release's 1-step alternative (docs/method.md
# §11.1): a single inversion step to t = 100 whose features are kept. Everything else is
# exp 51's.
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(backbone=dict(overrides=dict(timesteps=[100], saved_steps=[0])))
