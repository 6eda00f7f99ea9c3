# Experiment 92: exp 51 (DIFF + IPKL on GTA, five-domain evaluation) with the frozen UNet,
# VAE and text tower of Stable Diffusion 2.1-base (512 px, epsilon) instead of SD 2.1: a drop-in backbone, not the paper.
# configs/diff_configs/sd21-base.yaml holds the DIFF keys (model_id, unet_output, prompts and the
# released hooked layers, valid for this UNet); feature widths and strides are read from the
# loaded UNet. The trained parts, head, data, schedule and evaluation are exp 51's.
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(backbone=dict(diff_config='configs/diff_configs/sd21-base.yaml'))
