"""Benchmark the DIFF backbone: the straightforward (release-like) path against the optimised one.

For each model (the tiny SD-2.1-shaped one and the full SD 2.1 architecture, both with random
weights, nothing downloaded) and each path, one table row: UNet calls and UNet rows per
backbone call, wall time per image, peak memory, and the largest difference between the two
paths' outputs (same weights, same noise). Both paths share one set of frozen components.

Usage::

    python tools/benchmark_backbone.py [--models tiny sd21] [--size 128 128] [--batch 1]
        [--repeats 2] [--label-classes 0] [--device cpu|cuda] [--dtype auto]
"""
import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

from mmseg.models.backbones.diff import (DIFFConfig, DIFFEncoder,
                                         load_sd_components)
from mmseg.models.backbones.diff.architectures import SD21, build_random_components  # noqa
from mmseg.models.backbones.diff.reference import release_extraction  # noqa
from tools.make_tiny_sd import make_tiny_sd

logger = logging.getLogger(__name__)
PROMPTED_CLASSES = (1, 3, 12, 14, 16)


class PeakMemory:
    """Peak memory of a block in bytes.

    CUDA: the allocator's peak, as growth over the memory allocated at entry or, with
    ``absolute``, as ``torch.cuda.max_memory_allocated`` (weights included). CPU: the largest
    growth of the resident set size over its value at entry, sampled every 5 ms.
    """

    def __init__(self, device: torch.device, absolute: bool = False):
        self.device, self.peak, self.absolute = device, 0, absolute

    @staticmethod
    def _rss() -> int:
        with open('/proc/self/statm') as stream:
            return int(stream.read().split()[1]) * 4096

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base, self._stop = self._rss(), threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss() - self._base)

    def __exit__(self, *exc_info) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - (
                0 if self.absolute else self._base)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss() - self._base)


def _components(model: str, work_dir: Path):
    if model == 'tiny':
        return load_sd_components(make_tiny_sd(work_dir / 'tiny-sd21', seed=0))
    logger.info('Building the SD 2.1 architecture with random weights (takes a while on CPU)')
    return build_random_components(SD21, seed=0)


def _inputs(args, device: torch.device):
    height, width = args.size
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(args.batch, 3, height, width, generator=generator) * 2 - 1).to(device)
    labels = None
    if args.label_classes:
        labels = torch.full((args.batch, 1, height, width), 255, dtype=torch.long)
        stripe = width // args.label_classes
        for index, cls in enumerate(PROMPTED_CLASSES[:args.label_classes]):
            labels[:, :, :, index * stripe:(index + 1) * stripe] = cls
        labels = labels.to(device)
    return images, labels


def benchmark_model(model: str, args, work_dir: Path) -> List[Dict]:
    """Rows for the straightforward and the optimised path of one model."""
    device = torch.device(args.device)
    components = _components(model, work_dir)
    images, labels = _inputs(args, device)
    rows, reference = [], None
    for optimize in (False, True):
        config = DIFFConfig(model_id='unused', dtype=args.dtype, compile=args.compile)
        torch.manual_seed(0)
        encoder = DIFFEncoder(config, components).to(device).eval()
        if not optimize:  # the release's computation, as released (diff/reference.py)
            encoder.extractor.extract = release_extraction(
                encoder.extractor, components.tokenizer, components.text_encoder.to(device))
        seconds, outputs = [], None
        with torch.no_grad(), PeakMemory(device) as memory:
            for _ in range(args.repeats):
                generators = [torch.Generator().manual_seed(i) for i in range(args.batch)]
                start = time.perf_counter()
                outputs = encoder(images, labels, generators)
                if device.type == 'cuda':
                    torch.cuda.synchronize(device)
                seconds.append(time.perf_counter() - start)
        usage = encoder.last_usage
        difference = float('nan') if reference is None else max(
            (a.float() - b.float()).abs().max().item() for a, b in zip(outputs, reference))
        reference = outputs
        rows.append(dict(model=model, path='optimised' if optimize else 'straightforward',
                         calls=usage.calls, rows=sorted(set(usage.rows)),
                         seconds=min(seconds) / args.batch, peak=memory.peak / 2 ** 20,
                         difference=difference))
        encoder.extractor.release_compiled()  # the next path shares the UNet
        del encoder
    return rows


def format_rows(rows: Sequence[Dict]) -> str:
    """The result table."""
    lines = [f'{"model":<6} {"path":<16} {"UNet calls":>10} {"rows/call":>10} '
             f'{"s/image":>9} {"peak MiB":>10} {"max |diff|":>11}']
    for row in rows:
        lines.append(f'{row["model"]:<6} {row["path"]:<16} {row["calls"]:>10} '
                     f'{",".join(map(str, row["rows"])):>10} {row["seconds"]:>9.3f} '
                     f'{row["peak"]:>10.0f} {row["difference"]:>11.2e}')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', choices=('tiny', 'sd21'), default=['tiny', 'sd21'])
    parser.add_argument('--size', nargs=2, type=int, default=[128, 128], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=2, help='timed calls; the best is shown')
    parser.add_argument('--label-classes', type=int, default=0, choices=range(6),
                        help='k prompted classes in a synthetic label map (path control)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='auto', choices=('auto', 'float32', 'float16',
                                                            'bfloat16'))
    parser.add_argument('--compile', action='store_true',
                        help='run the frozen UNet through torch.compile (DIFF config compile; '
                        'the first call of each path compiles: use --repeats 2 or more)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    logging.getLogger('mmseg.models.backbones.diff.encoder').setLevel(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for model in args.models:
            rows += benchmark_model(model, args, Path(work_dir))
    print(f'device {args.device}, dtype {args.dtype}, batch {args.batch}, '
          f'size {args.size[0]}x{args.size[1]}, {args.label_classes} prompted classes, '
          f'{torch.get_num_threads()} threads')
    print(format_rows(rows))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
