# Experiment 85 (ablation): exp 51 without path-controlled diffusion (`use_path_control:
# false`, the release's do_mask_steps False with guidance 5.0: ordinary classifier-free
# guidance rows, no per-class prompted branches). IPKL still runs its two passes, which then
# differ only in their noise. Everything else is exp 51's.
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(backbone=dict(overrides=dict(use_path_control=False)))
