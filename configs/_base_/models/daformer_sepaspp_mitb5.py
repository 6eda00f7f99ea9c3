# DAFormer's standard-backbone model (Hoyer et al., CVPR 2022; the DG baseline of DGInStyle):
# a MiT-B5 encoder (transformers' SegformerModel, ImageNet-pretrained nvidia/mit-b5, trained
# end to end) with the same DAFormer sep-ASPP head as DIFF. Plain cross-entropy: IPKL and label
# steering belong to DIFF. The data preprocessor is DIFF's (RGB in [-1, 1]); the backbone
# applies the ImageNet normalisation itself, so pipelines, mixing and padding are shared.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # MiT's coarsest stride.
    size_divisor=32)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='MiT',
        # transformers-format folder, relative to the repository root:
        #   hf download nvidia/mit-b5 --local-dir checkpoints/mit-b5
        pretrained='checkpoints/mit-b5',
        # ImageNet mean/std (RGB, 0-255), DAFormer's img_norm_cfg.
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        # DAFormer's mit_b5: stochastic depth 0.1, no dropout.
        drop_path_rate=0.1),
    decode_head=dict(
        type='DAFormerHead',
        # MiT-B5's out_channels at strides 4, 8, 16, 32.
        in_channels=[64, 128, 320, 512],
        in_index=[0, 1, 2, 3],
        channels=256,
        num_classes=19,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=False,
        decoder_params=dict(embed_dims=256, fusion_cfg=dict(dilations=(1, 6, 12, 18), sep=True)),
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=False),
        ignore_index=255),
    train_cfg=dict(ipkl=dict(enabled=False)),
    # Whole-image inference, padded to multiples of 32 (MiT takes any size; the padding keeps
    # every stage's map an exact fraction of the input).
    test_cfg=dict(mode='whole', size_divisor=32, seed=0))
