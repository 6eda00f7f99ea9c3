"""Folder-scanning segmentation dataset on mmengine's ``BaseDataset``.

Like mmseg's ``CustomDataset``: images are found by scanning the image folder
recursively for ``img_suffix``; each label path is the image path relative to
the image folder, moved under the label folder, with ``img_suffix`` replaced by
``seg_map_suffix``. Every dataset shares the 19 Cityscapes classes.
"""
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmseg.registry import DATASETS, TRANSFORMS
from mmseg.utils import CITYSCAPES_METAINFO


def build_pipeline(pipeline: Sequence[Union[dict, Callable]]) -> List[Callable]:
    """Build pipeline dicts with this project's TRANSFORMS registry.

    mmengine's ``Compose`` builds from its root registry, which finds this
    project's transforms only under a ``default_scope`` of 'mmseg'; building
    here makes datasets work the same inside and outside a Runner.
    """
    return [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]


def scan_files(folder: Path, suffix: str) -> List[Path]:
    """All files under ``folder`` (following symlinks) whose name ends with ``suffix``."""
    found = []
    for dirpath, _, filenames in os.walk(folder, followlinks=True):
        found.extend(Path(dirpath) / name for name in filenames if name.endswith(suffix))
    return sorted(found)


@DATASETS.register_module()
class BaseSegDataset(BaseDataset):
    """Images and train-id labels found by scanning folders.

    Args:
        data_root: Dataset root; relative prefixes are joined to it.
        data_prefix: ``img_path`` (image folder) and, for labelled data,
            ``seg_map_path`` (label folder). Without ``seg_map_path`` the
            dataset has no labels (e.g. unlabelled target images).
        img_suffix: Image file name ending; None: the class's ``IMG_SUFFIX``.
        seg_map_suffix: Label file name ending; None: the class's ``SEG_MAP_SUFFIX``.
        sub_dirs: Optional folders, relative to both prefixes, to scan instead
            of the whole image folder (e.g. ACDC's ``fog/val``, ``night/val``).
        skip_img_paths: Images to leave out (with their labels). The start-up data check
            sets it when ``data_check.skip_bad_samples`` is True, so the saved config names
            the samples left out.
        pipeline: Transforms (dicts or callables).
        **kwargs: Passed on to :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = CITYSCAPES_METAINFO
    #: Defaults of a dataset class: file name endings and ``data_prefix`` (its val split
    #: where there is one).
    IMG_SUFFIX = '.png'
    SEG_MAP_SUFFIX = '.png'
    DEFAULT_PREFIX: Dict[str, str] = dict(img_path='', seg_map_path='')
    #: Expected layout and how to create it, quoted in error messages.
    LAYOUT = '<data_root>/<img_path>/**/*<img_suffix> with labels in <seg_map_path>'
    PREPARE = ''

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[Dict[str, str]] = None,
                 img_suffix: Optional[str] = None,
                 seg_map_suffix: Optional[str] = None,
                 sub_dirs: Optional[Sequence[str]] = None,
                 skip_img_paths: Sequence[str] = (),
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 **kwargs) -> None:
        self.img_suffix = self.IMG_SUFFIX if img_suffix is None else img_suffix
        self.seg_map_suffix = self.SEG_MAP_SUFFIX if seg_map_suffix is None else seg_map_suffix
        self.sub_dirs = list(sub_dirs) if sub_dirs else None
        self.skip_img_paths = frozenset(os.path.abspath(p) for p in skip_img_paths)
        data_prefix = dict(data_prefix if data_prefix is not None else self.default_prefix())
        unknown = set(data_prefix) - {'img_path', 'seg_map_path'}
        if unknown or 'img_path' not in data_prefix:
            raise KeyError(f'{type(self).__name__}: data_prefix must have img_path and may '
                           f'have seg_map_path; got keys {sorted(data_prefix)}')
        super().__init__(data_root=str(data_root),
                         data_prefix=data_prefix,
                         pipeline=build_pipeline(pipeline),
                         **kwargs)

    @classmethod
    def default_prefix(cls) -> Dict[str, str]:
        return dict(cls.DEFAULT_PREFIX)

    @property
    def has_labels(self) -> bool:
        return 'seg_map_path' in self.data_prefix

    def _layout_error(self, problem: str) -> str:
        hint = f' To create it: {self.PREPARE}.' if self.PREPARE else ''
        return (f'{type(self).__name__}: {problem}. Expected layout: {self.LAYOUT} '
                f'(images *{self.img_suffix}, labels *{self.seg_map_suffix}).{hint} '
                'See data/README.md.')

    def _scan_dirs(self) -> List[Path]:
        if self.data_root and not Path(self.data_root).is_dir():
            raise FileNotFoundError(
                self._layout_error(f'data root {self.data_root} does not exist'))
        img_dir = Path(self.data_prefix['img_path'])
        dirs = [img_dir / sub for sub in self.sub_dirs] if self.sub_dirs else [img_dir]
        for folder in dirs:
            if not folder.is_dir():
                raise FileNotFoundError(self._layout_error(f'image folder {folder} does not exist'))
        return dirs

    def load_data_list(self) -> List[dict]:
        """Scan the folders; one dict per image with ``img_path`` and ``seg_map_path``."""
        dirs = self._scan_dirs()
        img_dir = Path(self.data_prefix['img_path'])
        images = [path for folder in dirs for path in scan_files(folder, self.img_suffix)]
        skipped = len(images)
        images = [p for p in images if os.path.abspath(p) not in self.skip_img_paths]
        skipped -= len(images)
        if not images:
            raise FileNotFoundError(
                self._layout_error(
                    f'no *{self.img_suffix} images under {", ".join(map(str, dirs))}'))
        data_list, missing = [], []
        for img_path in images:
            info = dict(img_path=str(img_path),
                        seg_map_path=None,
                        label_map=None,
                        reduce_zero_label=False,
                        seg_fields=[])
            if self.has_labels:
                rel = img_path.relative_to(img_dir)
                stem = rel.name[:-len(self.img_suffix)]
                seg = Path(
                    self.data_prefix['seg_map_path']) / rel.parent / (stem + self.seg_map_suffix)
                if not seg.is_file():
                    missing.append((img_path, seg))
                info['seg_map_path'] = str(seg)
            data_list.append(info)
        if missing:
            img_path, seg = missing[0]
            raise FileNotFoundError(
                self._layout_error(
                    f'image {img_path} has no label: expected {seg} ({len(missing)} of '
                    f'{len(images)} images lack a label; were the labels converted?)'))
        left_out = f' ({skipped} bad samples left out)' if skipped else ''
        print_log(
            f'{type(self).__name__}: {len(data_list)} images from '
            f'{", ".join(map(str, dirs))}{left_out}',
            logger='current',
            level=logging.INFO)
        return data_list
