# Optimiser of the release (docs/method.md §2.6): AdamW lr 6e-5, betas (0.9, 0.999),
# weight decay 0.01 on every trainable parameter, the decode head at 10x the lr
# (6e-4), global L2 gradient-norm clip 5. Only parameters with requires_grad=True
# enter the optimiser (the frozen Stable Diffusion weights are in no group).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=6e-05, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01),
    # substring match on parameter names, longest key first: `head` = decode_head.*
    paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=10.0))),
    clip_grad=dict(max_norm=5, norm_type=2),
)
