# DIFF backbone (frozen Stable Diffusion 2.1 features; trained aggregation + finecoder) with the
# DAFormer head using separable ASPP fusion (docs/method.md §1 and §3).
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # RGB in [-1, 1], the range the VAE expects.
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # The UNet needs image sides that are multiples of 64.
    size_divisor=64)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    # All DIFF knobs live in diff_config.yaml (repository root); `overrides` replaces keys.
    backbone=dict(type='DIFF', diff_config='diff_config.yaml', overrides=dict()),
    decode_head=dict(
        type='DAFormerHead',
        # Must equal the backbone's out_channels (stride4_channels + projection_channels).
        in_channels=[256, 512, 1024, 2048],
        in_index=[0, 1, 2, 3],
        channels=256,
        num_classes=19,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=False,
        decoder_params=dict(embed_dims=256, fusion_cfg=dict(dilations=(1, 6, 12, 18), sep=True)),
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=False),
        ignore_index=255),
    # IPKL: a with-label and a without-label backbone pass, CE on both, MSE between logits.
    train_cfg=dict(ipkl=dict(enabled=True, consistency_weight=1.0)),
    # Whole-image inference, padded to multiples of 64; per-image noise seeded from `seed`.
    test_cfg=dict(mode='whole', size_divisor=64, seed=0))
