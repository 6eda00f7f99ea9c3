"""Benchmark a whole experiment-50 training iteration and one evaluation image, per path.

The segmentor is built from the exp-50 config (DIFF backbone, DAFormer sep-ASPP head, IPKL) and
trained with its own optimiser settings: one iteration is the data preprocessor, the IPKL loss
(the label-steered and the label-free pass), the backward, the gradient-norm clip and the AdamW
step (mmengine's ``train_step``). The frozen Stable Diffusion is the tiny SD-2.1-shaped model of
``tools/make_tiny_sd.py`` or the full SD 2.1 architecture with random weights (nothing is
downloaded). The straightforward path (the release's computation, ``diff/reference.py``) and the
optimised one run in the same process on the same frozen weights, so their ratio is fair even
on a busy machine.

Reported per path (printed, and written with ``--out``): seconds per training iteration and per
evaluation image, UNet calls and rows per call (counted by a forward pre-hook on the UNet,
independently of the backbone's ``last_usage``), peak memory (CUDA: max allocated; CPU: peak
growth of the resident set while the phase runs), torch.compile graph counts with
``--compile``, and the projected wall time of the config's schedule (exp 50: 40k iterations and
10 validations of the 500 Cityscapes val images at 1024x512). The projection is only the
release's if the crop, the evaluation size and the batch are the release's (``--size 512``,
``--eval-size 512 1024``, ``--batch 1``); the JSON says whether they were.

Usage::

    python tools/benchmark_train.py --model tiny --device cpu            # about a minute
    python tools/benchmark_train.py --model sd21 --size 128 --device cpu --iters 1 --warmup 0
    python tools/benchmark_train.py --model sd21 --device cuda --dtype bfloat16 [--compile]
        [--batch 1] [--iters 5] [--warmup 2] [--paths both|optimized|straightforward]
        [--eval-size 512 1024] [--prompted 1] [--set key=value ...] [--out result.json]
"""
import argparse
import contextlib
import json
import logging
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple
from unittest import mock

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

from mmseg.models.backbones.diff import load_sd_components
from mmseg.models.backbones.diff.reference import release_extraction
from tools.benchmark_backbone import PeakMemory

logger = logging.getLogger(__name__)

EXP50 = REPO_ROOT / 'configs/diff/diff-daformer_sd21_srconly-40k_gta2cs-512x512.py'
# `--trained-parts narrow` takes the trained parts' widths from the CPU demo's config.
DEMO = REPO_ROOT / 'configs/diff/diff-daformer_tiny_srconly_syn-demo.py'
NARROW_BACKBONE_KEYS = ('projection_channels', 'stride4_channels')
# Cityscapes val, the validation set of exp 50, has 500 images (a property of the dataset).
CITYSCAPES_VAL_IMAGES = 500
# The tiny model of `make demo` (written by tools/make_tiny_sd.py; ignored by git).
TINY_DIR = REPO_ROOT / 'checkpoints/tiny-sd21'
DEFAULT_SIZE = dict(tiny=128, sd21=512)
PATHS = dict(both=('straightforward', 'optimized'), optimized=('optimized', ),
             straightforward=('straightforward', ))
# Train ids without a path-control prompt that fill the rest of the synthetic label map.
UNPROMPTED_FILL = (0, 2, 8)  # road, building, vegetation
IGNORE_INDEX = 255


# --------------------------------------------------------------------------- measuring helpers
class UNetCallCounter:
    """Counts UNet calls and their batch rows, independently of the backbone's ``last_usage``.

    Eager: a forward pre-hook on the UNet. Compiled (DIFF ``compile: true``): the UNet runs
    inside a ``torch.compile`` graph, where a hook would be traced (and would specialise the
    dynamic row count), so the extractor's compiled-call entry point is wrapped instead, outside
    the graph.
    """

    def __init__(self, extractor: torch.nn.Module):
        self.rows: List[int] = []
        if extractor.config.compile:
            original = extractor._unet_step

            def counted(inputs, *args, **kwargs):
                self.rows.append(int(inputs.shape[0]))
                return original(inputs, *args, **kwargs)

            extractor._unet_step = counted
            self.remove = lambda: delattr(extractor, '_unet_step')
        else:
            handle = extractor.unet.register_forward_pre_hook(self._hook, with_kwargs=True)
            self.remove = handle.remove

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        sample = args[0] if args else kwargs['sample']
        self.rows.append(int(sample.shape[0]))

    @contextlib.contextmanager
    def counting(self) -> Iterator[List[int]]:
        """Yields the list that receives the rows of every UNet call inside the block."""
        self.rows = []
        yield self.rows


def compiled_graphs() -> int:
    """Graphs torch.compile (dynamo) has captured in this process so far."""
    from torch._dynamo.utils import counters
    return int(counters['stats']['unique_graphs'])


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- model and data
def load_exp_config(config: Path, model_id: str, overrides: Dict[str, Any],
                    narrow: bool = False):
    """The experiment config with the backbone pointed at ``model_id`` and DIFF overrides.

    Args:
        narrow: Give the trained parts (aggregation, finecoder, decode head) the widths of the
            CPU demo's config (:data:`DEMO`) instead of the experiment's; all else stays.
    """
    from mmseg.apis import load_config
    cfg = load_config(config)
    backbone = cfg.model.backbone
    if backbone.get('type') != 'DIFF':
        raise ValueError(f'{config}: model.backbone.type must be DIFF, got '
                         f'{backbone.get("type")!r}')
    if narrow:
        demo = load_config(DEMO).model
        overrides = {**{k: demo.backbone.overrides[k] for k in NARROW_BACKBONE_KEYS}, **overrides}
        cfg.model.decode_head.in_channels = demo.decode_head.in_channels
        cfg.model.decode_head.channels = demo.decode_head.channels
        cfg.model.decode_head.decoder_params.embed_dims = demo.decode_head.decoder_params.embed_dims
    backbone.overrides = dict(backbone.get('overrides') or {}, model_id=model_id, **overrides)
    return cfg


def build_segmentor(cfg, components=None) -> torch.nn.Module:
    """``cfg.model`` built from the registry; ``components`` replace loading ``model_id``.

    ``init_weights`` is not called: the values of the trained parts do not change the cost.
    """
    from mmseg.models.backbones.diff import encoder as encoder_module
    from mmseg.registry import MODELS
    torch.manual_seed(0)  # both paths start from the same trained-part weights
    patch = (mock.patch.object(encoder_module, 'load_sd_components', lambda config: components)
             if components is not None else contextlib.nullcontext())
    with patch:
        return MODELS.build(cfg.model)


def build_optim_wrapper(cfg, model: torch.nn.Module):
    """The config's optimiser wrapper (AdamW, head lr x10, clip) over the trainable parameters."""
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
    options = dict(cfg.optim_wrapper)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type=options.pop('constructor', 'DefaultOptimWrapperConstructor'),
        paramwise_cfg=options.pop('paramwise_cfg', None), optim_wrapper_cfg=options))
    return constructor(model)


def prompted_classes(model: torch.nn.Module, count: int) -> List[int]:
    """The first ``count`` train ids that have a path-control prompt in the DIFF config."""
    available = sorted(model.backbone.encoder.config.label_prompts)
    if count > len(available):
        raise ValueError(f'--prompted {count}: the DIFF config has only {len(available)} '
                         f'label_prompts ({available})')
    return available[:count]


def synthetic_batch(batch: int, height: int, width: int, classes: Sequence[int],
                    with_labels: bool, seed: int = 0) -> Dict[str, list]:
    """A collated batch as the data loader gives it: uint8 BGR images and data samples.

    The label map has vertical stripes: each prompted class, then unprompted classes, with an
    ignored band at the top (as in GTA's ego-vehicle area).
    """
    from mmengine.structures import PixelData

    from mmseg.structures import SegDataSample
    generator = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    stripes = list(classes) + list(UNPROMPTED_FILL)
    for index in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                                    generator=generator))
        sample = SegDataSample(metainfo=dict(img_path=f'benchmark_{index}.png',
                                             ori_shape=(height, width),
                                             img_shape=(height, width)))
        if with_labels:
            label = torch.empty(1, height, width, dtype=torch.long)
            bounds = [round(i * width / len(stripes)) for i in range(len(stripes) + 1)]
            for cls, left, right in zip(stripes, bounds, bounds[1:]):
                label[..., left:right] = cls
            label[:, :height // 8] = IGNORE_INDEX
            sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def sd21_components(device: torch.device):
    """The SD 2.1 architecture with seeded random weights, built in memory on ``device``."""
    from mmseg.models.backbones.diff.architectures import SD21, build_random_components
    logger.info('Building the SD 2.1 architecture with random weights (a minute on a CPU)')
    return build_random_components(SD21, seed=0, device=device)


# ------------------------------------------------------------------------------- the phases
def _timed(device: torch.device, step) -> float:
    _synchronize(device)
    start = time.perf_counter()
    step()
    _synchronize(device)
    return time.perf_counter() - start


def _usage(model: torch.nn.Module) -> Dict[str, Any]:
    """The backbone's own account of its latest forward (``last_usage``), for comparison."""
    usage = _summarise_rows(model.backbone.last_usage.rows)
    return dict(calls=model.backbone.last_usage.calls, rows=usage['unet_rows'],
                rows_per_call=usage['rows_per_call'])


def _summarise_rows(rows: Sequence[int]) -> Dict[str, Any]:
    """Calls, total rows and a compact ``{rows per call: calls}`` histogram."""
    histogram: Dict[str, int] = {}
    for count in rows:
        histogram[str(count)] = histogram.get(str(count), 0) + 1
    return dict(unet_calls=len(rows), unet_rows=sum(rows), rows_per_call=histogram)


def run_training(model, optim_wrapper, args, device: torch.device, counter: UNetCallCounter,
                 classes: Sequence[int]) -> Dict[str, Any]:
    """``warmup`` untimed then ``iters`` timed training iterations."""
    model.train()
    size = args.size
    losses: Dict[str, float] = {}

    def step() -> None:
        data = synthetic_batch(args.batch, size, size, classes, with_labels=True)
        log_vars = model.train_step(data, optim_wrapper)
        losses.update({k: float(v.detach()) for k, v in log_vars.items()})

    graphs = compiled_graphs()
    for index in range(args.warmup):
        logger.info('warm-up iteration %d: %.2f s', index, _timed(device, step))
    warm_graphs = compiled_graphs()
    seconds = []
    with PeakMemory(device, absolute=True) as memory:
        for index in range(args.iters):
            with counter.counting() as rows:
                seconds.append(_timed(device, step))
            logger.info('iteration %d: %.2f s', index, seconds[-1])
            if index == 0:
                counted, usage = list(rows), _usage(model)
    return dict(seconds_per_iter=statistics.mean(seconds), seconds=seconds,
                **_summarise_rows(counted), last_usage=usage, peak_memory_mib=memory.peak / 2**20,
                losses=losses, graphs_compiled_in_warmup=warm_graphs - graphs,
                graphs_compiled_after_warmup=compiled_graphs() - warm_graphs)


def run_evaluation(model, args, device: torch.device, counter: UNetCallCounter
                   ) -> Dict[str, Any]:
    """One evaluation batch (``--batch`` images at ``--eval-size``), after a warm-up batch."""
    model.eval()
    height, width = args.eval_size
    data = synthetic_batch(args.batch, height, width, (), with_labels=False, seed=1)
    graphs = compiled_graphs()
    with torch.no_grad():
        for _ in range(min(args.warmup, 1)):
            model.test_step(data)
        warm_graphs = compiled_graphs()
        with PeakMemory(device, absolute=True) as memory, counter.counting() as rows:
            seconds = _timed(device, lambda: model.test_step(data))
    return dict(seconds_per_image=seconds / args.batch, size=[height, width],
                **_summarise_rows(rows), last_usage=_usage(model),
                peak_memory_mib=memory.peak / 2**20, graphs_compiled_in_warmup=warm_graphs - graphs,
                graphs_compiled_after_warmup=compiled_graphs() - warm_graphs)


def projection(cfg, train: Dict[str, Any], evaluation: Dict[str, Any], args) -> Dict[str, Any]:
    """Wall time of the config's schedule from the measured per-iteration / per-image times."""
    iters = int(cfg.train_cfg.max_iters)
    interval = cfg.train_cfg.get('val_interval') or iters
    validations = iters // interval
    train_s = iters * train['seconds_per_iter']
    val_s = validations * CITYSCAPES_VAL_IMAGES * evaluation['seconds_per_image']
    release_crop, release_eval = release_sizes(cfg)
    return dict(iterations=iters, validations=validations, val_images=CITYSCAPES_VAL_IMAGES,
                train_hours=train_s / 3600, validation_hours=val_s / 3600,
                total_hours=(train_s + val_s) / 3600,
                at_release_sizes=(args.size == release_crop and tuple(args.eval_size)
                                  == release_eval and args.batch == 1))


def release_sizes(cfg) -> Tuple[Optional[int], Optional[Tuple[int, int]]]:
    """The config's training crop side and validation size (H, W), where the config states them."""
    crop = cfg.get('crop_size')
    crop = int(crop[0]) if crop and crop[0] == crop[1] else None
    evaluation = None
    pipeline = (cfg.get('val_dataloader') or {}).get('dataset', {}).get('pipeline', [])
    for transform in pipeline:
        if transform.get('type') == 'Resize':
            width, height = transform['scale']
            evaluation = (int(height), int(width))
    return crop, evaluation


def benchmark_path(path: str, cfg_for, components, args, device: torch.device,
                   ) -> Dict[str, Any]:
    """Build the segmentor for one path, train ``iters`` iterations and evaluate one batch."""
    logger.info('%s path', path)
    cfg = cfg_for()
    model = build_segmentor(cfg, components).to(device)
    if path == 'straightforward':  # the release's computation (diff.reference)
        extractor = model.backbone.encoder.extractor
        text = components or load_sd_components(extractor.config)
        extractor.extract = release_extraction(extractor, text.tokenizer,
                                               text.text_encoder.to(device))
    optim_wrapper = build_optim_wrapper(cfg, model)
    counter = UNetCallCounter(model.backbone.encoder.extractor)
    classes = prompted_classes(model, args.prompted)
    try:
        train = run_training(model, optim_wrapper, args, device, counter, classes)
        evaluation = run_evaluation(model, args, device, counter)
    finally:
        counter.remove()
    result = dict(train=train, eval=evaluation, prompted_classes=list(classes),
                  projection=projection(cfg, train, evaluation, args))
    del model, optim_wrapper
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return result


# ------------------------------------------------------------------------------- the command
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', choices=('tiny', 'sd21'), default='tiny')
    parser.add_argument('--size', type=int, default=None,
                        help='square training crop (default 128 tiny, 512 sd21)')
    parser.add_argument('--eval-size', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='evaluation image size (default: size x 2*size, the Cityscapes '
                             'aspect; 512 1024 is the release\'s 1024x512)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default='auto', choices=('auto', 'float32', 'float16',
                                                            'bfloat16'))
    parser.add_argument('--compile', action='store_true', help='DIFF config compile: true')
    parser.add_argument('--batch', type=int, default=1, help='images per iteration and per '
                        'evaluation batch (exp 50: 1)')
    parser.add_argument('--iters', type=int, default=2, help='timed training iterations')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed training iterations first (and one untimed evaluation '
                             'if > 0)')
    parser.add_argument('--paths', choices=tuple(PATHS), default='both')
    parser.add_argument('--prompted', type=int, default=1,
                        help='k: prompted classes in the synthetic label map (exp-50 has 0-5)')
    parser.add_argument('--trained-parts', choices=('exp50', 'narrow'), default=None,
                        help='widths of the trained aggregation/finecoder/head: the config\'s '
                             '(exp50, default for sd21) or the CPU demo\'s (narrow, default for '
                             'tiny: the full-width ones cost tens of seconds per CPU iteration)')
    parser.add_argument('--config', type=Path, default=EXP50, help='experiment config')
    parser.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE',
                        help='DIFF config overrides, values in YAML syntax '
                             '(e.g. timesteps=[40,20,10] saved_steps=[2,1,0])')
    parser.add_argument('--tiny-dir', type=Path, default=TINY_DIR,
                        help='tiny model folder for --model tiny (written there if missing)')
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads of torch (default 1: tiny ops are bound by thread '
                             'synchronisation; on 2 busy cores 2 threads made a tiny iteration '
                             '14x slower); 0 keeps torch\'s default')
    parser.add_argument('--out', type=Path, default=None, help='write the results as JSON')
    args = parser.parse_args(argv)
    args.size = args.size or DEFAULT_SIZE[args.model]
    args.trained_parts = args.trained_parts or ('narrow' if args.model == 'tiny' else 'exp50')
    args.eval_size = tuple(args.eval_size or (args.size, 2 * args.size))
    if args.iters < 1 or args.warmup < 0 or args.batch < 1 or args.prompted < 0:
        parser.error('--iters and --batch must be >= 1, --warmup and --prompted >= 0')
    return args


def _overrides(args: argparse.Namespace) -> Dict[str, Any]:
    import yaml
    overrides = {}
    for item in args.set:
        if '=' not in item:
            raise SystemExit(f'--set {item!r}: expected KEY=VALUE')
        key, value = item.split('=', 1)
        overrides[key] = yaml.safe_load(value)
    overrides['dtype'] = args.dtype
    if args.compile:
        overrides['compile'] = True
    return overrides


def environment(args: argparse.Namespace, device: torch.device) -> Dict[str, Any]:
    """What the numbers depend on."""
    info = dict(model=args.model, size=args.size, eval_size=list(args.eval_size),
                trained_parts=args.trained_parts, device=str(device), dtype=args.dtype,
                compile=args.compile, batch=args.batch,
                iters=args.iters, warmup=args.warmup, prompted=args.prompted,
                config=str(args.config), overrides=args.set, torch=torch.__version__,
                python=platform.python_version(), threads=torch.get_num_threads())
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def format_results(result: Dict[str, Any]) -> str:
    """A plain-text summary of the JSON result."""
    env = result['environment']
    lines = [f'model {env["model"]}, crop {env["size"]}, eval {env["eval_size"][0]}x'
             f'{env["eval_size"][1]}, device {env["device"]}, dtype {env["dtype"]}, compile '
             f'{env["compile"]}, batch {env["batch"]}, k={env["prompted"]}, '
             f'{env["threads"]} threads',
             f'{"path":<16} {"s/iter":>8} {"calls":>6} {"rows":>6} {"peak MiB":>9} '
             f'{"s/eval img":>10} {"calls":>6} {"rows":>6} {"peak MiB":>9} {"exp-50 h":>9}']
    for name, path in result['paths'].items():
        train, evaluation = path['train'], path['eval']
        lines.append(f'{name:<16} {train["seconds_per_iter"]:>8.3f} {train["unet_calls"]:>6} '
                     f'{train["unet_rows"]:>6} {train["peak_memory_mib"]:>9.0f} '
                     f'{evaluation["seconds_per_image"]:>10.3f} {evaluation["unet_calls"]:>6} '
                     f'{evaluation["unet_rows"]:>6} {evaluation["peak_memory_mib"]:>9.0f} '
                     f'{path["projection"]["total_hours"]:>9.1f}')
        if env['compile']:
            lines.append(f'{"":<16} graphs compiled: train warm-up '
                         f'{train["graphs_compiled_in_warmup"]}, after '
                         f'{train["graphs_compiled_after_warmup"]}; eval warm-up '
                         f'{evaluation["graphs_compiled_in_warmup"]}, after '
                         f'{evaluation["graphs_compiled_after_warmup"]}')
    for phase, speedup in result.get('speedup', {}).items():
        lines.append(f'optimised vs straightforward, {phase}: {speedup:.2f}x faster')
    release = next(iter(result['paths'].values()))['projection']['at_release_sizes']
    lines.append(f'projection: {result["projection_basis"]}'
                 + ('' if release else ' (NOT at the release sizes: not exp 50\'s real time)'))
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Every requested path; the result as a JSON-ready dict."""
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    overrides = _overrides(args)
    if args.model == 'tiny':
        from tools.make_tiny_sd import make_tiny_sd
        model_id, components = str(make_tiny_sd(args.tiny_dir, seed=0)), None
    else:
        model_id, components = 'random SD 2.1 architecture (in memory)', sd21_components(device)

    def cfg_for():
        return load_exp_config(args.config, model_id, dict(overrides),
                               narrow=args.trained_parts == 'narrow')

    paths = {path: benchmark_path(path, cfg_for, components, args, device)
             for path in PATHS[args.paths]}
    result = dict(environment=environment(args, device), paths=paths)
    if len(paths) == 2:
        slow, fast = paths['straightforward'], paths['optimized']
        result['speedup'] = dict(
            train=slow['train']['seconds_per_iter'] / fast['train']['seconds_per_iter'],
            eval=slow['eval']['seconds_per_image'] / fast['eval']['seconds_per_image'])
    some = next(iter(paths.values()))['projection']
    result['projection_basis'] = (
        f'{some["iterations"]} iterations x s/iter + {some["validations"]} validations x '
        f'{some["val_images"]} images x s/eval image')
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    for name in ('mmseg.models.backbones.diff.encoder', 'mmengine'):
        logging.getLogger(name).setLevel(logging.WARNING)
    result = run(args)
    print(format_results(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, allow_nan=False) + '\n')
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
