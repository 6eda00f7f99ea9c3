# `poly10warm` (docs/method.md §2.6): linear warm-up over 1500 iterations from
# ratio 1e-6, multiplied by a linear (power 1) decay to 0 at 40k iterations:
#   lr(it) = base * (1 - it / 40000) * (1 - (1 - it / 1500) * (1 - 1e-6))   (it < 1500)
#   lr(it) = base * (1 - it / 40000)                                        (it >= 1500)
# In mmcv the decay runs from iteration 0 and the warm-up multiplies it, so both
# mmengine schedulers start at 0 (a PolyLR starting at 1500 would restart the decay
# from the base lr). mmengine schedulers reach their end value at step
# end - begin - 1, hence end=1501 and end=40001 (tests/test_engine/test_schedule.py
# checks the hand formula above to 1e-9 relative).
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-06, end_factor=1.0, by_epoch=False,
         begin=0, end=1501),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=40001),
]
# 40k iterations at batch 1; validation every 4000 iterations.
# ResumableIterBasedTrainLoop = mmengine's loop + exact resume of the random states.
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # every 10000 iterations, all kept (max_keep_ckpts=-1), as released
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=-1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
