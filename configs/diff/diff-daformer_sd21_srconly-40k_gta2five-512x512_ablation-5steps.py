# Experiment 80 (ablation): exp 51 with the release's 5-step schedule, commented out in its
# diff_config.yaml "for accelerating" (docs/method.md §11.1): inversion timesteps
# 80, 60, 40, 20, 1 (the release's num_timesteps 5), features kept at all five steps.
# Its training log: 0.94 s per iteration on an RTX A6000 against 5.55 s for 37 steps.
# Everything else (data, RCS, IPKL, schedule, five-domain evaluation) is exp 51's.
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(backbone=dict(overrides=dict(timesteps=[80, 60, 40, 20, 1],
                                          saved_steps=[4, 3, 2, 1, 0])))
