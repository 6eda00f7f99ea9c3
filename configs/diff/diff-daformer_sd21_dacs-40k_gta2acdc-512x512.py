# DIFF + DACS self-training, GTA5 -> ACDC (docs/differences.md §4: beyond the release, whose
# DACS machinery was switched off). Final, annotated config in DAFormer's style.
_base_ = [
    '../_base_/default_runtime.py',
    # DIFF backbone (frozen SD 2.1 features, trained aggregation + finecoder), DAFormer
    # sep-ASPP head, IPKL two-pass objective on the source batch.
    '../_base_/models/daformer_sepaspp_diff.py',
    # GTA5 source with rare-class sampling (T = 0.01) + unlabelled ACDC train (all four
    # conditions) at 960x540, 512x512 crops; validation on ACDC val at 960x540.
    '../_base_/datasets/uda_gta_to_acdc_512x512.py',
    # DACS: EMA teacher (alpha 0.99), pseudo-labels (threshold 0.968), ClassMix, jitter, blur.
    '../_base_/uda/dacs.py',
    # AdamW lr 6e-5 (head x10), weight decay 0.01, gradient-norm clip 5.
    '../_base_/schedules/adamw.py',
    # 1500-iteration linear warm-up, linear decay to 0 at 40k iterations.
    '../_base_/schedules/poly10warm.py',
]
seed = 0
# DACS wraps the segmentor of the model base; student and teacher share one frozen SD.
model = dict(_base_.uda, model=_base_.model, max_iters=_base_.train_cfg.max_iters, _delete_=True)
