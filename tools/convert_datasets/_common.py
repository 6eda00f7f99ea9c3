"""Shared parts of the label converters: id mapping, class statistics, atomic writing.

Each converter writes ``*_labelTrainIds.png`` (mode L, 255 = ignore) and, for the
training split, the three files rare-class sampling reads (docs/method.md §5.3):

- ``sample_class_stats.json``: ``[{"<train id>": pixels, ..., "file": path}, ...]``;
- ``sample_class_stats_dict.json``: ``{path: {"<train id>": pixels, ...}}``;
- ``samples_with_class.json``: ``{"<train id>": [[path, pixels], ...]}``.

Paths are relative to the dataset root (rare-class sampling matches basenames).

After converting, every converter opens each image and converted label of the dataset with
the start-up data check of training (unreadable or truncated files, values outside the train
ids, label and image sizes that differ): a problem is reported at once, not in training.
"""
import argparse
import json
import logging
import sys
from functools import partial
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from mmseg.utils import IGNORE_INDEX, NUM_CLASSES, atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

#: File name ending of every converted label (GTA, SYNTHIA, Mapillary).
TRAIN_ID_SUFFIX = '_labelTrainIds.png'


def parse_args(description: str, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """``root`` (positional) and ``--nproc``, shared by every converter."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('root', type=Path, help='dataset root folder')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes')
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    return parser.parse_args(argv)


def check_converted(root: Path, datasets: Sequence[Tuple[str, Dict[str, str]]]) -> int:
    """Run the data check on the converted ``datasets`` (type, data_prefix) found under ``root``.

    Returns:
        The number of samples checked.

    Raises:
        SystemExit: status 2 after ``error: data check: ...`` and the report of every problem.
    """
    import mmseg.datasets  # noqa: F401  (registers the dataset classes)
    from mmseg.datasets.sample_check import (check_samples, count_bad, labelled_pairs,
                                             problem_report)
    from mmseg.registry import DATASETS
    checked = []
    for dataset_type, prefix in datasets:
        if not (Path(root) / prefix['img_path']).is_dir():
            continue
        dataset = DATASETS.build(dict(type=dataset_type, data_root=str(root), data_prefix=prefix,
                                      serialize_data=False))
        checked.append((f'{dataset_type} {prefix["img_path"]}', check_samples(
            labelled_pairs(dataset), desc=f'checking {prefix["img_path"]}')))
    bad, total = count_bad(checked)
    if bad:
        print(f'error: data check: {bad} of {total} converted samples are bad (listed below); '
              f'fix or remove them\n{problem_report(checked)}', file=sys.stderr)
        sys.exit(2)
    logger.info('data check: %d samples fine', total)
    return total


def run_cli(convert: Callable[[Path, int], Path], description: str,
            argv: Optional[Sequence[str]],
            datasets: Sequence[Tuple[str, Dict[str, str]]] = ()) -> None:
    """The ``main`` of every converter: ``convert(root, nproc)`` from the command line.

    Then :func:`check_converted` on ``datasets`` (dataset type and ``data_prefix``).
    """
    args = parse_args(description, argv)
    root = convert(args.root, args.nproc)
    check_converted(root, datasets)


def lookup_table(id_to_train_id: Mapping[int, int], size: int = 65536) -> np.ndarray:
    """A table mapping every raw id below ``size`` to its train id (others to 255)."""
    table = np.full(size, IGNORE_INDEX, dtype=np.uint8)
    for raw, train in id_to_train_id.items():
        table[raw] = train
    return table


def class_stats(label: np.ndarray) -> Dict[str, int]:
    """Pixels per present train id, keys as strings (the json form)."""
    counts = np.bincount(label.ravel(), minlength=256)[:NUM_CLASSES]
    return {str(c): int(n) for c, n in enumerate(counts) if n > 0}


def write_label(path: Path, label: np.ndarray) -> None:
    """Write a train-id label as an 8-bit grayscale PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(label.astype(np.uint8), mode='L').save(tmp)


def map_label_file(src: Path, dst: Path, table: np.ndarray, root: Path,
                   read: Callable[[Path], np.ndarray]) -> Dict[str, object]:
    """Map the raw ids of ``src`` through ``table``, write ``dst``, return its stats."""
    raw = read(src)
    if raw.ndim != 2:
        raise ValueError(f'{src}: raw label of shape {raw.shape}, expected one channel of ids')
    if raw.size and int(raw.max()) >= len(table):
        raise ValueError(f'{src}: raw id {int(raw.max())} exceeds the id range {len(table)}')
    label = table[raw]
    write_label(dst, label)
    stats: Dict[str, object] = dict(class_stats(label))
    stats['file'] = dst.relative_to(root).as_posix()
    return stats


def read_pil_ids(path: Path) -> np.ndarray:
    """Raw ids of a palette or grayscale PNG (GTA, Mapillary): the pixel indices."""
    try:
        with Image.open(path) as img:
            return np.array(img)
    except OSError as err:
        raise OSError(f'Cannot read raw label {path}: {err}') from err


def run_parallel(func: Callable, items: Sequence, nproc: int, desc: str) -> List:
    """``[func(item) for item in items]`` with a progress bar, on ``nproc`` processes."""
    if nproc > 1:
        with Pool(nproc) as pool:
            return list(tqdm(pool.imap(func, items, chunksize=8), total=len(items), desc=desc))
    return [func(item) for item in tqdm(items, desc=desc)]


def save_class_stats(out_dir: Path, sample_class_stats: List[Dict[str, object]]) -> None:
    """Write the three rare-class-sampling files into ``out_dir`` (atomically)."""
    stats = sorted(sample_class_stats, key=lambda s: str(s['file']))
    per_file = {str(s['file']): {k: v for k, v in s.items() if k != 'file'} for s in stats}
    with_class: Dict[str, list] = {}
    for file, counts in per_file.items():
        for c, n in counts.items():
            with_class.setdefault(c, []).append([file, n])
    with_class = dict(sorted(with_class.items(), key=lambda kv: int(kv[0])))
    for name, obj in (('sample_class_stats.json', stats), ('sample_class_stats_dict.json',
                                                           per_file), ('samples_with_class.json',
                                                                       with_class)):
        atomic_write_text(out_dir / name, json.dumps(obj, indent=2) + '\n')
    logger.info('wrote class statistics of %d files to %s', len(stats), out_dir)


def convert_with_table(sources: Sequence[Path],
                       dst_of: Callable[[Path], Path],
                       table: np.ndarray,
                       root: Path,
                       nproc: int,
                       desc: str,
                       read: Callable[[Path], np.ndarray] = read_pil_ids) -> List[Dict]:
    """Convert each raw label with ``table``; return the per-file stats."""
    pairs = [(src, dst_of(src)) for src in sources]
    func = partial(_convert_pair, table=table, root=root, read=read)
    return run_parallel(func, pairs, nproc, desc)


def convert_label_dir(root: Path,
                      label_dir: Path,
                      is_raw: Callable[[Path], bool],
                      table: np.ndarray,
                      nproc: int,
                      desc: str,
                      missing: str,
                      read: Callable[[Path], np.ndarray] = read_pil_ids) -> Path:
    """Convert the raw ``*.png`` labels under ``label_dir`` (those ``is_raw`` accepts).

    Each goes to ``*_labelTrainIds.png`` beside it; the class statistics go into
    ``root``. ``missing`` ends the error raised when there is no raw label. Returns ``root``.
    """
    raw = sorted(p for p in label_dir.rglob('*.png') if is_raw(p))
    if not raw:
        raise FileNotFoundError(f'{label_dir} holds no {missing}.')
    stats = convert_with_table(raw,
                               lambda p: p.with_name(p.stem + TRAIN_ID_SUFFIX),
                               table,
                               root,
                               nproc,
                               desc,
                               read=read)
    save_class_stats(root, stats)
    return root


def _convert_pair(pair, table, root, read):
    return map_label_file(pair[0], pair[1], table, root, read)


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` or raise a clear error naming it and the expected content."""
    if not path.is_dir():
        raise FileNotFoundError(f'{path} does not exist: expected {what}. See data/README.md.')
    return path
