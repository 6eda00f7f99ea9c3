# Experiment 94: exp 51 (DIFF + IPKL on GTA, five-domain evaluation) with the frozen UNet, VAE
# and both text towers of Stable Diffusion XL base 1.0 (1024 px, epsilon, CLIP ViT-L +
# OpenCLIP ViT-bigG) instead of SD 2.1: a drop-in backbone, not the paper.
# configs/diff_configs/sdxl.yaml holds the DIFF keys (model_id, bfloat16 for SD XL's VAE, and
# hooked layers for its three up blocks); feature widths and strides are read from the loaded
# UNet, and every UNet call gets SD XL's pooled text embedding and size/crop time ids. The
# trained parts, head, data (512x512 crops, padded to multiples of 64), schedule and
# evaluation are exp 51's.
_base_ = ['./diff-daformer_sd21_srconly-40k_gta2five-512x512.py']
model = dict(backbone=dict(diff_config='configs/diff_configs/sdxl.yaml'))
