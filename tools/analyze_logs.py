"""Plot training curves from mmengine's scalar logs to a PNG.

Example::

    python tools/analyze_logs.py work_dirs/<run> --keys loss cityscapes/mIoU --out curves.png

A run folder is searched for ``*/vis_data/scalars.json`` (one JSON object per line, written
by mmengine's LocalVisBackend: training entries with ``iter``/``step`` and losses, and
validation entries with metrics); several files or folders can be compared in one figure.
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple


import matplotlib

matplotlib.use('Agg')  # no display needed
import matplotlib.pyplot as plt

from mmseg.utils import atomic_path

Series = Dict[str, Tuple[List[float], List[float]]]


class NothingToPlotError(KeyError):
    """No requested key (or no logged iteration at all) in the logs."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class BadLogError(ValueError):
    """A scalars.json line that is not JSON."""


def find_scalar_logs(path: Path) -> List[Path]:
    """``path`` if it is a file, else every ``scalars.json`` under it (sorted)."""
    if path.is_file():
        return [path]
    found = sorted(path.rglob('scalars.json'))
    if not found:
        raise FileNotFoundError(f'no scalars.json under {path} (expected '
                                '<work_dir>/<timestamp>/vis_data/scalars.json)')
    return found


def read_series(log_file: Path, keys: Sequence[str]) -> Series:
    """{key: (steps, values)} for each requested key found in a scalars.json file."""
    series: Series = {k: ([], []) for k in keys}
    with open(log_file, encoding='utf-8') as stream:
        for line_no, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise BadLogError(f'{log_file}:{line_no}: not a JSON line ({error})') from None
            step = entry.get('step', entry.get('iter'))
            for key in keys:
                if key in entry and step is not None:
                    series[key][0].append(float(step))
                    series[key][1].append(float(entry[key]))
    return series


def plot(logs: Sequence[Path], keys: Sequence[str], out: Path, title: str = '') -> Path:
    """One subplot per key, one line per log file; saved atomically to ``out``."""
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 3 * len(keys)), squeeze=False)
    plotted = 0
    for log_file in logs:
        label = log_file.parent.parent.name if log_file.parent.name == 'vis_data' else \
            log_file.stem
        for ax, (key, (steps, values)) in zip(axes[:, 0], read_series(log_file, keys).items()):
            if steps:
                ax.plot(steps, values, marker='o' if len(steps) < 20 else None, label=label)
                plotted += 1
    if not plotted:
        plt.close(fig)
        if not any(read_series(log_file, ['step'])['step'][0] for log_file in logs):
            raise NothingToPlotError(
                f'no logged iteration in {", ".join(map(str, logs))}: the run stopped before '
                'its first logging interval (default_hooks.logger.interval), nothing to plot')
        raise NothingToPlotError(f'none of the keys {list(keys)} appears in '
                                 f'{[str(p) for p in logs]}')
    for ax, key in zip(axes[:, 0], keys):
        ax.set_title(key)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize='small')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return out


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Plot training curves to a PNG.')
    parser.add_argument('logs', nargs='+', type=Path,
                        help='scalars.json files or run folders (work_dirs/<run>)')
    parser.add_argument('--keys', nargs='+', default=['loss'],
                        help='logged keys to plot, e.g. loss lr cityscapes/mIoU')
    parser.add_argument('--out', type=Path, default=Path('curves.png'), help='output PNG')
    parser.add_argument('--title', default='', help='figure title')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Path:
    args = parse_args(argv)
    logs = [f for path in args.logs for f in find_scalar_logs(path)]
    out = plot(logs, args.keys, args.out, args.title)
    print(f'curves of {", ".join(args.keys)} written to {out}')
    return out


if __name__ == '__main__':
    from mmseg.apis.cli import run_cli
    run_cli(main, extra_errors=(NothingToPlotError, BadLogError))  # `error: ...`, exit 2
