"""Plan an experiment on a GPU without one: FLOPs, peak memory and projected hours.

The experiment's model (the full Stable Diffusion 2.1 architecture with random weights, nothing
downloaded) runs on fake tensors (shapes without data, ``tools/fake_cuda.py``) at full size:

- FLOPs per training iteration (VAE, frozen UNet, trained forward, backward) for k = 0 to 5
  prompted classes in the label map, and per evaluation image, counted with
  ``torch.utils.flop_counter.FlopCounterMode`` plus two formula fixes (:data:`FIXED_FORMULAS`):
  the CPU flash-attention kernel (no formula in torch: counted as 0) and grouped-convolution
  backward (torch over-counts it by about the group count).
- Peak memory of one training iteration by category: frozen weights, trained weights,
  gradients, optimiser state (AdamW: two float32 moments), and the iteration's peak of
  live tensors (activations, gradients while they are made, temporaries), with the frozen
  parts in 16-bit precision (bfloat16 autocast on the fake CPU; float16 on a GPU has the
  same size), plus a stated margin for what only a GPU adds (:data:`MARGIN_GB`,
  :data:`MARGIN_FRACTION`).
- Seconds per iteration and hours of the whole schedule (training plus every validation,
  every domain) on named GPUs at a stated utilisation of their datasheet dense 16-bit tensor
  throughput (:data:`GPUS`, :data:`UTILISATION`), and whether the plan fits 24, 48, 80 GB.

Usage::

    python tools/plan_gpu.py --exp 50 [--classes 0 1 2 3 4 5] [--out plan.json] [--md plan.md]
    python tools/plan_gpu.py --config configs/diff/<config>.py
"""
import argparse
import contextlib
import json
import logging
import math
import sys
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

REPO_ROOT = Path(__file__).resolve().parents[1]

logger = logging.getLogger(__name__)

GB = 1e9
# Datasheet dense FP16/BF16 tensor-core TFLOP/s with FP32 accumulation, without sparsity.
GPUS = {'A6000': 154.8, 'RTX 4090': 165.2, 'A100 SXM': 312.0, 'H100 SXM': 989.4,
        'H200': 989.4}
# Fraction of that throughput a training iteration is assumed to reach (calibrate it with
# ``tools/benchmark_train.py`` on a real GPU).
UTILISATION = 0.4
# What only a GPU adds: the CUDA context and kernels' workspaces (GB), and the caching
# allocator's fragmentation and fused-optimiser temporaries (fraction of the planned bytes).
MARGIN_GB = 1.5
MARGIN_FRACTION = 0.15
CARDS_GB = (24, 48, 80)
# Validation images per domain (properties of the datasets' validation splits) and the
# evaluation size (H, W) after the configs' resize, padded to the backbone's multiple.
VAL_IMAGES = {'cityscapes': 500, 'acdc': 406, 'dark_zurich': 50, 'bdd100k': 1000,
              'mapillary': 2000}
PROMPTED_MAX = 5


# ------------------------------------------------------------------------------- FLOP formulas
def _numel(shape: Sequence[int]) -> int:
    return math.prod(int(s) for s in shape)


def conv_flops(x_shape, w_shape, out_shape, transposed: bool) -> int:
    """Multiply-adds x 2 of a (grouped) convolution: weight elements x output positions.

    ``w_shape`` is (C_out, C_in / groups, *kernel) (transposed: (C_in, C_out / groups, ...)),
    so each weight element is used once per position of the larger (output) side and image.
    """
    positions = x_shape[2:] if transposed else out_shape[2:]
    return 2 * int(x_shape[0]) * _numel(positions) * _numel(w_shape)


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                        transposed, _output_padding, _groups, output_mask, out_shape=None,
                        **kwargs) -> int:
    """Input gradient and weight gradient each cost one forward convolution."""
    forward = conv_flops(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def attention_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    """softmax(Q K^T) V over (B, heads, L, E): two matrix products."""
    batch, heads, length, embed = (int(s) for s in q_shape)
    keys, values = int(k_shape[-2]), int(v_shape[-1])
    return 2 * batch * heads * length * keys * (embed + values)


def attention_backward_flops(grad_out_shape, q_shape, k_shape, v_shape, *args, out_shape=None,
                             **kwargs) -> int:
    """Gradients of Q, K and V and the recomputed scores: twice the forward's products."""
    return 2 * attention_flops(q_shape, k_shape, v_shape)


def fixed_formulas() -> Dict[Any, Callable]:
    aten = torch.ops.aten
    return {aten.convolution_backward: conv_backward_flops,
            aten._scaled_dot_product_flash_attention_for_cpu: attention_flops,
            aten._scaled_dot_product_flash_attention_for_cpu_backward:
                attention_backward_flops}


def flop_counter():
    """``FlopCounterMode`` with :func:`fixed_formulas` replacing or adding torch's."""
    from torch.utils.flop_counter import FlopCounterMode
    return FlopCounterMode(display=False, custom_mapping=fixed_formulas())


def split_flops(counter, parts: Dict[str, str]) -> Dict[str, int]:
    """Counted FLOPs per named part (module-name suffix) and ``rest`` (all other modules)."""
    counts = counter.get_flop_counts()
    total = counter.get_total_flops()
    result = {}
    for part, suffix in parts.items():
        names = [name for name in counts if name.endswith(suffix)]
        result[part] = sum(sum(counts[name].values()) for name in names[:1])
    result['rest'] = total - sum(result.values())
    return result


# ---------------------------------------------------------------------------------- memory
class LiveBytes(TorchDispatchMode):
    """Peak bytes of the storages that ops create while the mode is active (views counted once;
    a storage is freed when its last tensor is)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: Dict[int, List[int]] = {}

    def _release(self, key: int) -> None:
        entry = self._refs[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage._cdata
            entry = self._refs.get(key)
            if entry is None:
                entry = self._refs[key] = [storage.nbytes(), 0]
                self.live += entry[0]
                self.peak = max(self.peak, self.live)
            entry[1] += 1
            weakref.finalize(tensor, self._release, key)
        return out


def parameter_bytes(model: torch.nn.Module) -> Dict[str, float]:
    """Frozen and trained weights (as held), gradients and AdamW state of the trained ones."""
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    frozen += sum(b.numel() * b.element_size() for b in model.buffers())
    trained = [p for p in model.parameters() if p.requires_grad]
    trained_bytes = sum(p.numel() * p.element_size() for p in trained)
    return dict(frozen_weights=frozen / GB, trained_weights=trained_bytes / GB,
                gradients=trained_bytes / GB,
                optimiser_state=2 * sum(p.numel() * 4 for p in trained) / GB)


def with_margin(planned_gb: float) -> float:
    return planned_gb * (1 + MARGIN_FRACTION) + MARGIN_GB


# -------------------------------------------------------------------------------- counting
def _experiment_config(args):
    if args.config is not None:
        return Path(args.config)
    from experiments import EXPERIMENTS
    if args.exp not in EXPERIMENTS:
        raise SystemExit(f'error: --exp {args.exp}: no such experiment; expected one of '
                         f'{sorted(EXPERIMENTS)}')
    return REPO_ROOT / EXPERIMENTS[args.exp].base


def _segmentor(model):
    return model.model if hasattr(model, 'teacher') else model


def count_training(model, classes: Sequence[int], crop: int, batch: int, measure_memory: bool
                   ) -> Dict[str, Any]:
    """One training iteration's FLOPs (forward split by part, backward) and its live peak."""
    from tools import fake_cuda
    source, source_samples = fake_cuda.fake_batch(batch, crop, crop, classes, True, 'cpu')
    is_dacs = model is not _segmentor(model)
    live = LiveBytes() if measure_memory else contextlib.nullcontext()
    with fake_cuda.supplied_reads(fake_cuda.label_classes(classes)), live:
        with flop_counter() as forward:
            if is_dacs:
                target, target_samples = fake_cuda.fake_batch(batch, crop, crop, classes, False,
                                                              'cpu')
                losses = model.loss(source, source_samples, target, target_samples)
            else:
                losses = model.loss(source, source_samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        with flop_counter() as backward:
            loss.backward()
        del loss, losses
    parts = split_flops(forward, dict(vae='.vae', unet='.unet'))
    usage = getattr(model, 'last_usage', None) or getattr(_segmentor(model).backbone,
                                                          'last_usage', None)
    return dict(vae=parts['vae'], unet=parts['unet'], trained_forward=parts['rest'],
                backward=backward.get_total_flops(),
                total=forward.get_total_flops() + backward.get_total_flops(),
                unet_rows=list(usage.rows) if usage is not None else [],
                live_peak_gb=live.peak / GB if measure_memory else None)


def count_evaluation(model, height: int, width: int) -> Dict[str, Any]:
    from tools import fake_cuda
    segmentor = _segmentor(model)
    images, samples = fake_cuda.fake_batch(1, height, width, (), False, 'cpu')
    with fake_cuda.supplied_reads([]), torch.no_grad(), flop_counter() as counter:
        segmentor.predict(images, samples)
    parts = split_flops(counter, dict(vae='.vae', unet='.unet'))
    return dict(vae=parts['vae'], unet=parts['unet'], trained_forward=parts['rest'],
                total=counter.get_total_flops())


def evaluation_sizes(cfg) -> Dict[str, Any]:
    """Validation images and (H, W) after resize, per domain of the config's validation."""
    from tools.benchmark_train import release_sizes
    domains = {cfg.test_cfg.get('domain', 'cityscapes'): cfg.val_dataloader}
    domains.update((cfg.test_cfg.get('extra_domains') or {}))
    sizes = {}
    for name, loader in domains.items():
        size = release_sizes(dict(val_dataloader=loader))[1] or (512, 1024)
        sizes[name] = dict(images=VAL_IMAGES.get(name, 500), size=size)
    return sizes


def plan(args) -> Dict[str, Any]:
    from tools import fake_cuda
    config = _experiment_config(args)
    started = time.perf_counter()
    cfg = fake_cuda.experiment_config(config, dict(dtype='bfloat16'))
    crop = int(cfg.get('crop_size', (512, 512))[0])
    iters = int(cfg.train_cfg.max_iters)
    interval = int(cfg.train_cfg.get('val_interval') or iters)
    with fake_cuda.fake_mode():
        components = fake_cuda.sd21_components('cpu')
        model = fake_cuda.build_model(cfg, components, 'cpu')
        categories = parameter_bytes(model)
        training = {}
        for k in args.classes:
            classes = sorted(_segmentor(model).backbone.encoder.config.label_prompts)[:k]
            logger.info('training iteration, k = %d', k)
            training[k] = count_training(model, classes, crop, args.batch, k == args.memory_k)
            for p in model.parameters():
                p.grad = None
        evaluation = {}
        domains = evaluation_sizes(cfg)
        for size in sorted({tuple(d['size']) for d in domains.values()}):
            multiple = 64
            padded = tuple(math.ceil(s / multiple) * multiple for s in size)
            logger.info('evaluation image %dx%d', *padded)
            evaluation['x'.join(map(str, size))] = count_evaluation(model, *padded)
    memory = dict(categories, activations_peak=training[args.memory_k]['live_peak_gb'])
    planned = sum(memory.values())
    memory_row = dict(memory, planned=planned, margin=with_margin(planned) - planned,
                      total=with_margin(planned))
    per_image = memory['activations_peak'] / args.batch
    fixed = planned - memory['activations_peak']
    largest = {str(card): max(0, int(((card - MARGIN_GB) / (1 + MARGIN_FRACTION) - fixed)
                                     // per_image)) for card in CARDS_GB}
    train_flops = training[args.memory_k]['total']
    val_flops = sum(d['images'] * evaluation['x'.join(map(str, d['size']))]['total']
                    for d in domains.values())
    validations = iters // interval
    gpus = {}
    for name, tflops in GPUS.items():
        rate = tflops * 1e12 * UTILISATION
        seconds = train_flops / rate
        hours = (iters * train_flops + validations * val_flops) / rate / 3600
        gpus[name] = dict(seconds_per_iter=seconds, hours=hours)
    return dict(config=str(config.relative_to(REPO_ROOT) if config.is_relative_to(REPO_ROOT)
                           else config),
                crop=crop, batch=args.batch, iterations=iters, validations=validations,
                domains=domains, memory_k=args.memory_k,
                training_tflop={str(k): {key: (v / 1e12 if key not in ('unet_rows',
                                                                        'live_peak_gb') else v)
                                         for key, v in value.items()}
                                for k, value in training.items()},
                evaluation_tflop={size: {key: v / 1e12 for key, v in value.items()}
                                  for size, value in evaluation.items()},
                memory_gb=memory_row, fits={str(c): memory_row['total'] <= c for c in CARDS_GB},
                largest_batch=largest, gpus=gpus,
                assumptions=dict(utilisation=UTILISATION, tflops='datasheet dense FP16/BF16 '
                                 'tensor, FP32 accumulate, no sparsity', gpu_tflops=GPUS,
                                 margin_gb=MARGIN_GB, margin_fraction=MARGIN_FRACTION,
                                 largest_batch='activations scale linearly with the batch'),
                seconds=time.perf_counter() - started)


def to_markdown(result: Dict[str, Any]) -> str:
    k = str(result['memory_k'])
    lines = [f"# Plan: {result['config']} (projections from counted FLOPs)", '',
             f"Crop {result['crop']}, batch {result['batch']}, {result['iterations']} "
             f"iterations, {result['validations']} validations of "
             + ', '.join(f"{n} ({d['images']} images, {d['size'][1]}x{d['size'][0]})"
                         for n, d in result['domains'].items()) + '.', '',
             '| k | VAE | frozen UNet | trained forward | backward | total TFLOP | UNet rows |',
             '|---|---|---|---|---|---|---|']
    for key, row in result['training_tflop'].items():
        rows = row['unet_rows']
        lines.append(f"| {key} | {row['vae']:.1f} | {row['unet']:.1f} | "
                     f"{row['trained_forward']:.2f} | {row['backward']:.2f} | "
                     f"{row['total']:.1f} | {len(rows)} calls, {sum(rows)} rows |")
    lines += ['', '| evaluation image | VAE | frozen UNet | trained | total TFLOP |',
              '|---|---|---|---|---|']
    for size, row in result['evaluation_tflop'].items():
        lines.append(f"| {size} | {row['vae']:.1f} | {row['unet']:.1f} | "
                     f"{row['trained_forward']:.2f} | {row['total']:.1f} |")
    memory = result['memory_gb']
    lines += ['', f'Peak memory of a training iteration at k = {k} (GB):', '',
              '| ' + ' | '.join(memory) + ' |', '|' + '---|' * len(memory),
              '| ' + ' | '.join(f'{v:.1f}' for v in memory.values()) + ' |', '',
              'Fits: ' + ', '.join(f"{c} GB: {'yes' if f else 'no'}"
                                   for c, f in result['fits'].items())
              + '; largest batch: ' + ', '.join(f'{c} GB: {b}' for c, b in
                                                result['largest_batch'].items()) + '.', '',
              f"| GPU | s/iter (k = {k}) | hours (training + validation) |", '|---|---|---|']
    for name, row in result['gpus'].items():
        lines.append(f"| {name} | {row['seconds_per_iter']:.2f} | {row['hours']:.1f} |")
    assumptions = result['assumptions']
    lines += ['', f"Assumptions: {assumptions['utilisation']:.0%} of the {assumptions['tflops']}"
              f" throughput; memory margin {assumptions['margin_gb']} GB + "
              f"{assumptions['margin_fraction']:.0%}.", '']
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--exp', type=int, help='experiment number (run_experiments.py --exp)')
    group.add_argument('--config', type=Path, help='a DIFF experiment config file')
    parser.add_argument('--classes', type=int, nargs='+', default=list(range(PROMPTED_MAX + 1)),
                        help='prompted classes k in the label map to count (default 0-5)')
    parser.add_argument('--memory-k', type=int, default=3,
                        help='k of the memory plan and the projected times (default 3)')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--out', type=Path, default=None, help='write the plan as JSON')
    parser.add_argument('--md', type=Path, default=None, help='write the Markdown tables')
    args = parser.parse_args(argv)
    if args.config is not None and not args.config.is_file():
        parser.exit(2, f'error: --config {args.config}: no such file\n')
    if any(not 0 <= k <= PROMPTED_MAX for k in args.classes):
        parser.exit(2, f'error: --classes: expected values from 0 to {PROMPTED_MAX}\n')
    if args.memory_k not in args.classes:
        args.classes = sorted({*args.classes, args.memory_k})
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parse_args(argv)
    result = plan(args)
    from mmseg.utils import atomic_write_text
    markdown = to_markdown(result)
    print(markdown)
    if args.out is not None:
        atomic_write_text(args.out, json.dumps(result, indent=2) + '\n')
    if args.md is not None:
        atomic_write_text(args.md, markdown)
    return 0


if __name__ == '__main__':
    sys.exit(main())
