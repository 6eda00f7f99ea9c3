# DAFormer's standard-backbone model (Hoyer et al., CVPR 2022; the DG baseline of DGInStyle):
# a MiT-B5 encoder (transformers' SegformerModel, ImageNet-pretrained nvidia/mit-b5, trained
# end to end) with the same DAFormer sep-ASPP head as DIFF, inherited from DIFF's model config.
# Plain cross-entropy: IPKL and label steering belong to DIFF. The data preprocessor is DIFF's
# (RGB in [-1, 1]); the backbone applies the ImageNet normalisation itself, so pipelines, mixing
# and padding are shared.
_base_ = ['daformer_sepaspp_diff.py']
# MiT's coarsest stride (MiT takes any size; the padding keeps every stage's map an exact
# fraction of the input).
data_preprocessor = dict(size_divisor=32)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='MiT',
        # transformers-format folder, relative to the repository root:
        #   hf download nvidia/mit-b5 --local-dir checkpoints/mit-b5
        pretrained='checkpoints/mit-b5',
        # ImageNet mean/std (RGB, 0-255), DAFormer's img_norm_cfg.
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        # DAFormer's mit_b5: stochastic depth 0.1, no dropout.
        drop_path_rate=0.1),
    # MiT-B5's out_channels at strides 4, 8, 16, 32.
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    train_cfg=dict(ipkl=dict(_delete_=True, enabled=False)),
    test_cfg=dict(size_divisor=32))
