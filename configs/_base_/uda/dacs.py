# DACS self-training (docs/method.md §2.3; the values of the release's uda/dacs.py).
# A final config wraps its segmentor with it:
#   model = dict(_base_.uda, model=_base_.model, max_iters=..., _delete_=True)
uda = dict(
    type='DACS',
    # EMA teacher: alpha_t = min(1 - 1/(t + 1), alpha) over the trainable parameters only.
    alpha=0.99,
    # Pseudo-label weight = fraction of target pixels whose max softmax prob >= 0.968.
    pseudo_threshold=0.968,
    # Rows (top/bottom) of the pseudo-label weight set to 0; 0 = none (DAFormer's crop-PL
    # variant used 15/120 against rectification artefacts).
    pseudo_weight_ignore_top=0,
    pseudo_weight_ignore_bottom=0,
    # ClassMix: half the source classes (rounded up) pasted onto the target image.
    mix='class',
    # Mixed images: kornia ColorJitter(0.2 each) when U(0,1) > 0.2 (i.e. 80 % of batches),
    # then Gaussian blur when U(0,1) > 0.5, sigma ~ U(0.15, 1.15), kernel ~10 % of the side, odd.
    color_jitter_strength=0.2,
    color_jitter_probability=0.2,
    blur=True,
    blur_probability=0.5,
    blur_sigma_range=(0.15, 1.15),
    blur_kernel_ratio=0.1,
    # Source / target / pseudo-label / weight / mixed image / mixed label PNGs in work_dir/debug.
    debug_img_interval=1000,
    source_only=False)
# Sets the DACS model's debug folder to <work_dir>/debug before training.
custom_hooks = [dict(type='UDADebugHook')]
# As released (the distributed wrapper looks for parameters without a gradient).
find_unused_parameters = True
