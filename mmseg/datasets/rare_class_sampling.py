"""Rare-class sampling (RCS) as in DAFormer and the DIFF release (docs/method.md §2.4).

A class ``c`` is drawn with ``P(c) = softmax((1 - f_c) / T)``, where ``f_c`` is the
share of ``c`` among all labelled pixels of the source set
(``sample_class_stats.json``); then a file is drawn uniformly among those holding
more than ``min_pixels`` pixels of ``c`` (``samples_with_class.json``, matched by
basename). The caller re-runs the pipeline until the crop holds enough of ``c``.
Draws use numpy's global generator, which mmengine seeds.
"""
import json
import logging
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

CONVERT_HINT = 'Run tools/convert_datasets/<dataset>.py on the source root to write it.'


def _load_json(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f'Rare-class sampling needs {path}, which does not exist. '
                                f'{CONVERT_HINT}')
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as err:
        raise ValueError(f'{path} is not valid JSON ({err}). {CONVERT_HINT}') from err


def class_frequencies(stats_file: Path) -> Dict[int, int]:
    """Total pixel count per class over all files of ``sample_class_stats.json``."""
    totals: Dict[int, int] = {}
    for entry in _load_json(Path(stats_file)):
        for key, count in entry.items():
            if key != 'file':
                totals[int(key)] = totals.get(int(key), 0) + int(count)
    if not totals:
        raise ValueError(f'{stats_file} lists no labelled pixels. {CONVERT_HINT}')
    return totals


def rcs_class_probs(stats_file: Path, temperature: float) -> Tuple[List[int], np.ndarray]:
    """Classes present in the source set and their sampling probabilities.

    Args:
        stats_file: Path of ``sample_class_stats.json``.
        temperature: T of the softmax; smaller favours rare classes more.

    Returns:
        Classes ordered from rarest to most frequent, and ``softmax((1 - f) / T)``.
    """
    totals = class_frequencies(stats_file)
    classes = sorted(totals, key=lambda c: (totals[c], c))
    counts = np.array([totals[c] for c in classes], dtype=np.float64)
    logits = (1.0 - counts / counts.sum()) / temperature
    probs = np.exp(logits - logits.max())  # shifted for stability; same softmax
    return classes, probs / probs.sum()


class RareClassSampler:
    """Draws (class, dataset index) pairs for rare-class sampling.

    Args:
        stats_dir: Folder with ``sample_class_stats.json`` and ``samples_with_class.json``.
        seg_map_paths: Label path of every dataset item, in dataset order.
        min_pixels: A file is a candidate for ``c`` if it holds more than this many pixels.
        class_temp: Softmax temperature T.
        min_crop_ratio: The crop must hold more than ``min_pixels * min_crop_ratio``
            pixels of ``c`` (0 disables re-cropping).
    """

    def __init__(self,
                 stats_dir: str,
                 seg_map_paths: Sequence[str],
                 min_pixels: int = 3000,
                 class_temp: float = 0.01,
                 min_crop_ratio: float = 0.5) -> None:
        self.min_pixels = min_pixels
        self.min_crop_ratio = min_crop_ratio
        stats_dir = Path(stats_dir)
        self.classes, self.probs = rcs_class_probs(stats_dir / 'sample_class_stats.json',
                                                   class_temp)
        self.file_to_idx = self._index_by_basename(seg_map_paths)
        self.files_with_class = self._candidates(stats_dir / 'samples_with_class.json')
        print_log('RCS: ' + ', '.join(f'{c}: {p:.4f}' for c, p in zip(self.classes, self.probs)),
                  logger='current',
                  level=logging.INFO)

    @staticmethod
    def _index_by_basename(seg_map_paths: Sequence[str]) -> Dict[str, int]:
        index: Dict[str, int] = {}
        for i, path in enumerate(seg_map_paths):
            name = Path(path).name
            if name in index:
                raise ValueError(f'Rare-class sampling matches files by basename, but {name} '
                                 f'occurs twice ({seg_map_paths[index[name]]} and {path}).')
            index[name] = i
        return index

    def _candidates(self, samples_file: Path) -> Dict[int, List[str]]:
        raw = _load_json(samples_file)
        found: Dict[int, List[str]] = {}
        unknown = 0
        for c in self.classes:
            names = []
            for file, count in raw.get(str(c), []):
                name = Path(file).name
                if count > self.min_pixels:
                    if name in self.file_to_idx:
                        names.append(name)
                    else:
                        unknown += 1
            if not names:
                raise ValueError(
                    f'Rare-class sampling: no file of the dataset holds more than min_pixels='
                    f'{self.min_pixels} pixels of class {c} according to {samples_file}; '
                    'lower min_pixels or re-run the converter on this data root.')
            found[c] = names
        if unknown:
            print_log(
                f'RCS: {unknown} entries of {samples_file} are not in the dataset; '
                'they are skipped.',
                logger='current',
                level=logging.WARNING)
        return found

    def draw(self) -> Tuple[int, int]:
        """One class (by ``P(c)``) and one dataset index (uniform among its files)."""
        c = int(np.random.choice(self.classes, p=self.probs))
        name = self.files_with_class[c][np.random.randint(len(self.files_with_class[c]))]
        return c, self.file_to_idx[name]

    def crop_has_enough(self, item: dict, c: int) -> bool:
        """True if the packed item's label holds more than ``min_pixels * min_crop_ratio`` of c."""
        label = item['data_samples'].gt_sem_seg.data
        return int((label == c).sum()) > self.min_pixels * self.min_crop_ratio
