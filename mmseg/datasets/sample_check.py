"""The start-up check of every sample: each image and label is opened and decoded in full.

A truncated image, a label holding raw ids or colours, or a label of another size than its
image would otherwise surface only when the sample is drawn (or never, when a resize hides
it). :func:`check_samples` opens every file of a list of (image, label) pairs in a pool of
threads (the decoders release the GIL), with a progress bar, and returns every problem found.

Results are cached per file: a sample whose image and label have the same size and
modification time as at its last check is not opened again, so a second start is instant.
The cache lives in the user's cache folder (``$DIFF_CACHE_DIR``, else
``$XDG_CACHE_HOME/diff``, else ``~/.cache/diff``), under ``data-checks/``: never in the data
folder (which may be read-only or shared) nor in the work dir (which may move). It is keyed
by the absolute paths of the files; a missing or unwritable cache only costs time.
"""
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from PIL import Image
from tqdm import tqdm

from mmseg.utils import IGNORE_INDEX, NUM_CLASSES, atomic_write_text

from .transforms.loading import BadInputFileError, invalid_label_values, read_label

#: Changes when the rules of :func:`check_sample` change (older cache entries are ignored).
CHECK_VERSION = 1
Sample = Tuple[str, Optional[str]]  # (image path, label path or None)


def default_cache_dir() -> Path:
    """``$DIFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/diff``, else ``~/.cache/diff``."""
    if os.environ.get('DIFF_CACHE_DIR'):
        return Path(os.environ['DIFF_CACHE_DIR'])
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'diff'


def _image_size(path: str) -> Tuple[Optional[Tuple[int, int]], Optional[str]]:
    """((width, height), None) of a fully decoded image, or (None, the problem)."""
    try:
        with Image.open(path) as img:
            img.load()  # decodes every row: a truncated file fails here
            return img.size, None
    except FileNotFoundError:
        return None, f'image {path}: missing'
    except (OSError, ValueError, SyntaxError) as error:  # PIL's decoders raise all three
        return None, (f'image {path}: unreadable, truncated or not an image '
                      f'({str(error).strip() or type(error).__name__})')


def check_sample(img_path: str, seg_path: Optional[str]) -> List[str]:
    """Every problem of one sample (empty: the sample is fine).

    The image must decode in full; the label (if any) must be a readable single-channel map
    holding only the train ids 0..18 and 255 (ignore), of the image's size.
    """
    size, problem = _image_size(img_path)
    problems = [problem] if problem else []
    if seg_path is None:
        return problems
    try:
        label = read_label(seg_path)
    except (OSError, BadInputFileError) as error:
        return problems + [f'label {seg_path}: {error}']
    if label.ndim != 2:
        return problems + [f'label {seg_path}: shape {label.shape}, expected (H, W)']
    bad = invalid_label_values(label)
    if bad:
        shown = ', '.join(map(str, bad[:10])) + (' ...' if len(bad) > 10 else '')
        problems.append(f'label {seg_path}: values {{{shown}}} outside the train ids '
                        f'0..{NUM_CLASSES - 1} and {IGNORE_INDEX} (ignore)')
    if size is not None and (label.shape[1], label.shape[0]) != size:
        problems.append(f'label {seg_path} is {label.shape[1]}x{label.shape[0]} but its image '
                        f'{img_path} is {size[0]}x{size[1]} (width x height)')
    return problems


def _stamp(path: Optional[str]) -> Optional[List[int]]:
    """[size, mtime_ns] of a file (None: no file)."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


@dataclass
class CheckResult:
    """What :func:`check_samples` found."""
    total: int
    opened: int  # samples opened (the others were unchanged since their cached check)
    problems: Dict[str, List[str]] = field(default_factory=dict)  # image path -> problems
    cache_file: Optional[Path] = None


def _cache_file(cache_dir: Path, samples: Sequence[Sample]) -> Path:
    folder = os.path.commonpath([os.path.dirname(os.path.abspath(img)) for img, _ in samples])
    key = hashlib.sha256(folder.encode('utf-8', 'surrogateescape')).hexdigest()[:20]
    return cache_dir / 'data-checks' / f'{key}.json'


def _read_cache(path: Path) -> Dict[str, list]:
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get('version') != CHECK_VERSION:
        return {}
    return data.get('samples') or {}


def check_samples(samples: Sequence[Sample], workers: Optional[int] = None,
                  cache_dir: Optional[Path] = None, desc: str = 'checking data') -> CheckResult:
    """Check every sample (see :func:`check_sample`), reusing the cached results.

    Args:
        samples: (image path, label path or None) pairs.
        workers: Threads (default: the CPU count, at most 8).
        cache_dir: Cache folder (default :func:`default_cache_dir`).
        desc: Progress bar title.
    """
    cache_file = _cache_file(Path(cache_dir or default_cache_dir()), samples) if samples else None
    cache = _read_cache(cache_file) if cache_file else {}
    keys = [f'{os.path.abspath(img)}\0{os.path.abspath(seg) if seg else ""}'
            for img, seg in samples]
    stamps = [[_stamp(img), _stamp(seg)] for img, seg in samples]
    todo = [i for i, key in enumerate(keys)
            if key not in cache or cache[key][:2] != stamps[i]]
    if todo:
        workers = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            found = list(tqdm(pool.map(lambda i: check_sample(*samples[i]), todo),
                              total=len(todo), desc=desc, unit='sample'))
        for i, problems in zip(todo, found):
            cache[keys[i]] = stamps[i] + [problems]
        try:
            atomic_write_text(cache_file, json.dumps(
                dict(version=CHECK_VERSION, samples=cache), separators=(',', ':')))
        except OSError:
            pass  # no cache: the next start checks again
    result = CheckResult(total=len(samples), opened=len(todo), cache_file=cache_file)
    for (img, _), key in zip(samples, keys):
        if cache[key][2]:
            result.problems[img] = list(cache[key][2])
    return result


def labelled_pairs(dataset) -> List[Sample]:
    """(image, label) pairs of a :class:`BaseSegDataset` (label None when it has none)."""
    infos = (dataset.get_data_info(i) for i in range(len(dataset)))
    return [(str(info['img_path']), info.get('seg_map_path')) for info in infos]


def problem_report(checked: Sequence[Tuple[str, CheckResult]], limit: int = 50) -> str:
    """The lines listing every bad sample, per dataset (``limit`` lines per dataset)."""
    lines = []
    for where, result in checked:
        if not result.problems:
            continue
        lines.append(f'  {where}: {len(result.problems)} of {result.total} samples bad')
        flat = [p for problems in result.problems.values() for p in problems]
        lines += [f'    - {p}' for p in flat[:limit]]
        if len(flat) > limit:
            lines.append(f'    ... and {len(flat) - limit} more')
    return '\n'.join(lines)


def count_bad(checked: Sequence[Tuple[str, CheckResult]]) -> Tuple[int, int]:
    """(bad samples, samples) over every dataset checked."""
    return (sum(len(r.problems) for _, r in checked), sum(r.total for _, r in checked))


__all__ = ['check_sample', 'check_samples', 'labelled_pairs', 'problem_report', 'count_bad',
           'CheckResult', 'default_cache_dir']
