# Experiment 83 (ablation): exp 51 with the release's smaller projections (docs/method.md
# §11.1): `projection_dim: [512, 512, 320, 128]`, `projection_dim_x4: 64`. The release indexed
# projection_dim by stride 64, 32, 16, 8 and its first entry fed the discarded stride-64
# branch, so the widths at strides 8, 16, 32 are [128, 320, 512] and the stride-4 width is 64.
# The release's fixed GroupNorm groups (16 in the aggregation, 32 in the finecoder) divide
# every width here (bottlenecks 32, 80, 128), so they stay as released. The head's
# in_channels follow the backbone's out_channels (stride 4, 8, 16, 32).
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(backbone=dict(overrides=dict(projection_channels=[128, 320, 512],
                                          stride4_channels=64)),
             decode_head=dict(in_channels=[64, 128, 320, 512]))
