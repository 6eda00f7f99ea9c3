# Experiment 84 (ablation): exp 51 with the release's medium projections (docs/method.md
# §11.1): `projection_dim: [768, 768, 384, 192]`, `projection_dim_x4: 96`; the first entry fed
# the discarded stride-64 branch, so the widths at strides 8, 16, 32 are [192, 384, 768] and
# the stride-4 width is 96. The release's fixed GroupNorm groups (16 in the aggregation, 32 in
# the finecoder) divide every width here (bottlenecks 48, 96, 192), so they stay as released.
# The head's in_channels follow the backbone's out_channels (stride 4, 8, 16, 32).
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(backbone=dict(overrides=dict(projection_channels=[192, 384, 768],
                                          stride4_channels=96)),
             decode_head=dict(in_channels=[96, 192, 384, 768]))
