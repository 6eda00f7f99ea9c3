"""Source + target dataset for domain adaptation, and the source-only DG wrapper.

Design follows DAFormer's ``UDADataset`` / the DIFF release's ``DGDataset``
(docs/method.md §2.4): an item is a source sample, chosen by rare-class sampling
when configured, plus (for UDA) a random target sample under ``target_inputs`` /
``target_data_samples``.
"""
import logging
from typing import Optional, Union

import numpy as np
from mmengine.logging import print_log
from torch.utils.data import Dataset

from mmseg.registry import DATASETS

from .rare_class_sampling import RareClassSampler

#: Number of pipeline re-runs when the crop misses the sampled class (release value).
RCS_MAX_RECROPS = 10
RCS_KEYS = {'min_pixels', 'class_temp', 'min_crop_ratio'}


def _build(dataset: Union[dict, Dataset]) -> Dataset:
    return DATASETS.build(dataset) if isinstance(dataset, dict) else dataset


@DATASETS.register_module()
class UDADataset:
    """Labelled source and (possibly unlabelled) target.

    Without RCS, item ``i`` pairs source ``i // len(target)`` with target
    ``i % len(target)``; with RCS, ``i`` is ignored: the source sample comes
    from :class:`RareClassSampler` and the target index is uniform.

    Args:
        source: Source dataset or its config.
        target: Target dataset or its config.
        rare_class_sampling: ``dict(min_pixels, class_temp, min_crop_ratio)`` or None.
        stats_dir: Folder of the RCS json files (default: the source ``data_root``).
    """

    def __init__(self,
                 source: Union[dict, Dataset],
                 target: Optional[Union[dict, Dataset]],
                 rare_class_sampling: Optional[dict] = None,
                 stats_dir: Optional[str] = None) -> None:
        unknown = set(rare_class_sampling or {}) - RCS_KEYS
        if unknown:
            raise TypeError(f'rare_class_sampling: unknown keys {sorted(unknown)}; expected '
                            f'some of {sorted(RCS_KEYS)}')
        self.source = _build(source)
        self.target = _build(target) if target is not None else None
        self.rcs: Optional[RareClassSampler] = None
        if rare_class_sampling is not None:
            root = stats_dir if stats_dir is not None else getattr(self.source, 'data_root', '')
            paths = [self.source.get_data_info(i)['seg_map_path'] for i in range(len(self.source))]
            self.rcs = RareClassSampler(root, paths, **rare_class_sampling)

    @property
    def metainfo(self) -> dict:
        return self.source.metainfo

    def full_init(self) -> None:
        """Datasets are initialised on construction (mmengine Runner calls this)."""

    def __len__(self) -> int:
        return len(self.source) * len(self.target)

    def rare_class_source_item(self) -> dict:
        """A source item by rare-class sampling, re-cropped until the class is in the crop."""
        c, idx = self.rcs.draw()
        item = self.source[idx]
        if self.rcs.min_crop_ratio > 0:
            for _ in range(RCS_MAX_RECROPS):
                if self.rcs.crop_has_enough(item, c):
                    break
                item = self.source[idx]
        return item

    def _with_target(self, item: dict, target_idx: int) -> dict:
        target = self.target[target_idx]
        return {
            **item, 'target_inputs': target['inputs'],
            'target_data_samples': target['data_samples']
        }

    def __getitem__(self, idx: int) -> dict:
        if self.rcs is not None:
            item = self.rare_class_source_item()
            return self._with_target(item, np.random.randint(len(self.target)))
        return self._with_target(self.source[idx // len(self.target)], idx % len(self.target))


@DATASETS.register_module()
class DGDataset(UDADataset):
    """Source-only wrapper for domain generalisation: ``len = len(source)``.

    With RCS every ``__getitem__`` ignores its index and draws a rare-class
    sample (as released). A ``target`` entry is accepted and ignored.
    """

    def __init__(self,
                 source: Union[dict, Dataset],
                 target: Optional[Union[dict, Dataset]] = None,
                 rare_class_sampling: Optional[dict] = None,
                 stats_dir: Optional[str] = None) -> None:
        if target is not None:
            print_log('DGDataset: the target entry is ignored (source-only training).',
                      logger='current',
                      level=logging.INFO)
        super().__init__(source, None, rare_class_sampling, stats_dir)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: int) -> dict:
        if self.rcs is not None:
            return self.rare_class_source_item()
        return self.source[idx]
