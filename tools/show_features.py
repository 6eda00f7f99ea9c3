"""See what the diffusion features see: PCA figures across steps and levels, and their stability
across domains.

Examples::

    # rows = saved inversion steps, columns = levels (strides); first 3 PCA components as RGB
    python tools/show_features.py CONFIG street.png night.png --out features.png
    # with a label map (path control) and a trained checkpoint (its prediction is shown too)
    python tools/show_features.py CONFIG street.png --labels street_labelTrainIds.png \\
        --checkpoint CKPT --out features.png
    # the fused pyramid that the segmentation head receives (trained weights from CKPT)
    python tools/show_features.py CONFIG street.png --fused --checkpoint CKPT --out fused.png
    # cosine similarity of per-class mean features: source domain vs each target domain
    python tools/show_features.py CONFIG --stability source cityscapes acdc:fog dark_zurich \\
        --out stability.png

One PCA basis per level (per pyramid output with ``--fused``) is fitted to all images and
steps of a figure, so colours compare across images, domains and steps. ``--stability``
names domains of the config's ``domain_datasets`` (``source`` is the training source set;
``NAME:SUB`` keeps the images whose path has a folder ``SUB``, e.g. ``acdc:night``); the
first is compared with each of the others, and ``stability.json`` / ``stability.csv`` beside
the figure hold the numbers.
"""
import argparse
import csv
import io
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from tqdm import tqdm

from mmseg.apis import find_images, inference_model, init_model, load_config
from mmseg.apis.cli import DictAction, run_cli
from mmseg.engine.hooks import read_rgb
from mmseg.engine.runner import quiet_library_progress_bars
from mmseg.models.backbones.diff import Trajectory
from mmseg.models.backbones.diff_backbone import DIFF
from mmseg.utils import atomic_path, atomic_write_text
from mmseg.utils.class_names import CLASSES, PALETTE
from mmseg.utils.feature_views import (class_cosines, class_sums, colour_bar, enlarge, grid,
                                       heat_cell, pca_basis, project, split_steps, text_panel,
                                       to_rgb)
from mmseg.utils.visualization import colorize, legend

#: Width of one panel of the PCA figures, in pixels (the height follows the image).
PANEL_WIDTH = 256
SOURCE = 'source'


class ShowFeaturesError(ValueError):
    """Bad command-line input (reported as one ``error:`` line)."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config (its DIFF backbone and datasets are used)')
    parser.add_argument('images', nargs='*', help='image files or folders (not with --stability)')
    parser.add_argument('--out', required=True, help='the figure to write (.png)')
    parser.add_argument('--labels', nargs='+', default=None,
                        help='one train-id label map per image: path control of the inversion')
    parser.add_argument('--checkpoint', default=None,
                        help='trained checkpoint: adds the prediction; trained --fused maps')
    parser.add_argument('--fused', action='store_true',
                        help='show the fused pyramid the head receives instead of the raw levels')
    parser.add_argument('--stability', nargs='+', default=None, metavar='DOMAIN',
                        help='domains to compare (first = reference), e.g. source cityscapes '
                        'acdc:fog acdc:night dark_zurich')
    parser.add_argument('--max-images', type=int, default=4,
                        help='images per domain with --stability (the first ones)')
    parser.add_argument('--size', type=int, nargs=2, default=None, metavar=('W', 'H'),
                        help='resize every image to W x H (multiples of 64 for SD); default: '
                        'the first image rounded down to such multiples')
    parser.add_argument('--batch-size', type=int, default=2, help='images per extraction')
    parser.add_argument('--seed', type=int, default=0, help='seed of the inversion noise')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. model.backbone.overrides.model_id=...')
    parser.add_argument('--allow-other-sd', action='store_true',
                        help='use a checkpoint trained with another Stable Diffusion folder')
    args = parser.parse_args(argv)
    _check_args(args)
    return args


def _check_args(args: argparse.Namespace) -> None:
    """Refuse contradicting or missing inputs before the model is built."""
    if Path(args.out).suffix.lower() != '.png':
        raise ShowFeaturesError(f'--out {args.out}: expected a .png file name')
    if args.stability is not None:
        if args.images or args.labels or args.fused:
            raise ShowFeaturesError('--stability reads its images from the config\'s datasets; '
                                    'give no images, --labels or --fused with it')
        if len(args.stability) < 2:
            raise ShowFeaturesError(f'--stability: expected a reference domain and at least one '
                                    f'other, got {args.stability}')
    elif not args.images:
        raise ShowFeaturesError('expected one or more images (or --stability DOMAIN ...)')
    if args.max_images < 1 or args.batch_size < 1:
        raise ShowFeaturesError('--max-images and --batch-size must be at least 1')
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f'--checkpoint: no file at {args.checkpoint}')


# ---------------------------------------------------------------- inputs

def _resolve_size(size: Optional[Sequence[int]], first: np.ndarray, multiple: int
                  ) -> Tuple[int, int]:
    if size is not None:
        width, height = size
        if width % multiple or height % multiple or width <= 0 or height <= 0:
            raise ShowFeaturesError(f'--size {width} {height}: both must be positive multiples '
                                    f'of {multiple} for this model')
        return width, height
    height, width = first.shape[:2]
    return max(multiple, width // multiple * multiple), max(multiple, height // multiple * multiple)


def _read_label(path: Path) -> np.ndarray:
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None or label.ndim != 2:
        raise ShowFeaturesError(f'{path}: expected a single-channel train-id label image')
    return label


def _load(paths: Sequence[Path], labels: Optional[Sequence[Path]], multiple: int,
          size: Optional[Sequence[int]]):
    """Images as RGB uint8 and [-1, 1] tensors at one size, labels resized nearest."""
    rgb = []
    for path in paths:
        image = read_rgb(str(path))
        if image is None:
            raise ShowFeaturesError(f'{path}: not a readable image')
        rgb.append(image)
    width, height = _resolve_size(size, rgb[0], multiple)
    rgb = [enlarge(image, (width, height), label=False) for image in rgb]
    tensor = torch.stack([torch.from_numpy(i).permute(2, 0, 1).float() / 127.5 - 1 for i in rgb])
    label_maps = None
    if labels is not None:
        label_maps = [enlarge(_read_label(p), (width, height)) for p in labels]
    return rgb, tensor, label_maps


def _image_paths(entries: Sequence[str]) -> List[Path]:
    return [path for entry in entries for path in find_images(entry)]


def _domain_files(cfg, name: str, limit: int) -> List[Tuple[Path, Path]]:
    """(image, label) paths of a domain of the config: ``source``, NAME or NAME:SUB."""
    from mmseg.registry import DATASETS
    base, _, subset = name.partition(':')
    if base == SOURCE:
        dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
        dataset = dataset.get('source', dataset)
    else:
        table = cfg.get('domain_datasets') or {}
        if base not in table:
            raise ShowFeaturesError(f'--stability {name}: the config has no domain {base!r} in '
                                    f'domain_datasets (choose from {[SOURCE, *table]})')
        dataset = table[base]
    built = DATASETS.build(dict(dataset, pipeline=[]))
    pairs = []
    for index in range(len(built)):
        info = built.get_data_info(index)
        image, label = Path(info['img_path']), info.get('seg_map_path')
        if subset and subset not in image.parts:
            continue
        if not label:
            raise ShowFeaturesError(f'--stability {name}: its dataset has no labels')
        pairs.append((image, Path(label)))
        if len(pairs) == limit:
            break
    if not pairs:
        raise ShowFeaturesError(f'--stability {name}: no images (no folder {subset!r} in the '
                                f'paths of {base})')
    return pairs


# ---------------------------------------------------------------- extraction

def _extract(model, images: torch.Tensor, labels: Optional[List[np.ndarray]], args,
             bar: tqdm, fused: bool) -> Dict:
    """Raw features ``{stride: (N, C, h, w)}`` on the CPU (or the fused maps), batch by batch."""
    encoder = model.backbone.encoder
    device = next(model.parameters()).device
    outputs: Dict = {}
    for start in range(0, images.shape[0], args.batch_size):
        batch = images[start:start + args.batch_size].to(device)
        label_map = None
        if labels is not None:
            label_map = torch.from_numpy(np.stack(labels[start:start + args.batch_size]))
            label_map = label_map.long().unsqueeze(1).to(device)
        generators = [torch.Generator(device=device).manual_seed(args.seed + start + i)
                      for i in range(batch.shape[0])]
        with torch.no_grad():
            [raw] = encoder.extractor.extract([Trajectory(batch, label_map, generators)])
            if fused:
                maps = encoder.decode({s: raw[s] for s in encoder.recorded_strides})
                raw = dict(zip(encoder.out_strides, maps))
        for stride, value in raw.items():
            outputs.setdefault(stride, []).append(value.float().cpu())
        bar.update(batch.shape[0])
    return {stride: torch.cat(values) for stride, values in outputs.items()}


def _predictions(model, paths: Sequence[Path], size: Tuple[int, int]) -> List[np.ndarray]:
    predicted = []
    for path in paths:
        [sample] = inference_model(model, str(path))
        predicted.append(enlarge(sample.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8),
                                 size))
    return predicted


# ---------------------------------------------------------------- figures

def _captioned(panel: np.ndarray, caption: str) -> np.ndarray:
    panel = panel.copy()
    panel[:18] = (panel[:18] * 0.3).astype(np.uint8)
    cv2.putText(panel, caption, (4, 13), 0, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def _panel_size(image: np.ndarray) -> Tuple[int, int]:
    height, width = image.shape[:2]
    return PANEL_WIDTH, max(1, round(PANEL_WIDTH * height / width))


def _input_row(rgb: np.ndarray, label: Optional[np.ndarray], pred: Optional[np.ndarray]
               ) -> List[np.ndarray]:
    size = _panel_size(rgb)
    row = [_captioned(enlarge(rgb, size, label=False), 'image')]
    if label is not None:
        row.append(_captioned(enlarge(colorize(label), size), 'label map (path control)'))
    if pred is not None:
        row.append(_captioned(enlarge(colorize(pred), size), 'prediction (checkpoint)'))
    return row


def _pca_colours(maps: Sequence[torch.Tensor]) -> List[np.ndarray]:
    mean, components = pca_basis(maps)
    return to_rgb(project(maps, mean, components))


def steps_figure(model, raw: Dict[int, torch.Tensor], rgb, labels, preds,
                 names: Sequence[str]) -> np.ndarray:
    """Rows: each image's input row, then one row per saved step; columns: the levels."""
    extractor = model.backbone.encoder.extractor
    levels = [level for level in extractor.levels if level.stride in raw]
    saved = list(extractor.config.saved_steps)
    # colours[level][step]: (N, h, w, 3); one basis per level over all images and steps
    colours = [_pca_colours(split_steps(raw[level.stride], level)) for level in levels]
    cells, titles = [], []
    for n, image in enumerate(rgb):
        size = _panel_size(image)
        cells.append(_input_row(image, None if labels is None else labels[n],
                                None if preds is None else preds[n]))
        titles.append(f'image {n + 1}\n{names[n][:15]}')
        for position, step in enumerate(saved):
            cells.append([enlarge(colours[k][position][n], size) for k in range(len(levels))])
            titles.append(f'image {n + 1}\nstep {step}\nt = {extractor.steps[step].timestep}')
    columns = [f'stride {lv.stride}: {lv.channels // lv.num_steps} ch' for lv in levels]
    title = ('Diffusion features: PCA components 1-3 as RGB, one basis per level shared by all '
             'images and steps' + ('; label-steered (path control)' if labels else ''))
    return _with_legend(grid(cells, titles, columns, title), labels, preds)


def fused_figure(fused: Dict[int, torch.Tensor], rgb, labels, preds, names: Sequence[str],
                 trained: bool) -> np.ndarray:
    """Rows: images; columns: the input panels, then the head's input maps (fine to coarse)."""
    strides = sorted(fused)
    colours = {s: _pca_colours([fused[s]])[0] for s in strides}
    cells, titles = [], []
    for n, image in enumerate(rgb):
        size = _panel_size(image)
        row = _input_row(image, None if labels is None else labels[n],
                         None if preds is None else preds[n])
        row += [_captioned(enlarge(colours[s][n], size), f'stride {s}: {fused[s].shape[1]} ch')
                for s in strides]
        cells.append(row)
        titles.append(f'image {n + 1}\n{names[n][:15]}')
    columns = [''] * len(cells[0])
    weights = 'trained weights' if trained else 'UNTRAINED aggregation (give --checkpoint)'
    title = (f'Fused pyramid the head receives ({weights}): PCA components 1-3 as RGB, one '
             'basis per output shared by all images')
    return _with_legend(grid(cells, titles, columns, title), labels, preds)


def _with_legend(figure: np.ndarray, labels, preds) -> np.ndarray:
    if labels is None and preds is None:
        return figure
    present = set()
    for group in (labels or []) + (preds or []):
        present |= set(np.unique(group).tolist())
    return np.concatenate([figure, legend(figure.shape[1], CLASSES, PALETTE, sorted(present))])


def stability_figure(result: dict) -> np.ndarray:
    """Heat map: rows (target domain, step), columns levels, cell = mean class cosine."""
    values = [cell['mean_cosine'] for cell in result['cells'] if cell['mean_cosine'] is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    strides = result['strides']
    cells, titles = [], []
    for target in result['targets']:
        for step in result['saved_steps']:
            row = []
            for stride in strides:
                [cell] = [c for c in result['cells'] if c['target'] == target
                          and c['step'] == step and c['stride'] == stride]
                row.append(heat_cell(cell['mean_cosine'], low, high))
            cells.append(row)
            titles.append(f'{target}\nstep {step}, t = {result["timesteps"][str(step)]}')
    counts = ', '.join(f'{name} {count}' for name, count in result['images'].items())
    figure = grid(cells, titles, [f'stride {s}' for s in strides],
                  f'Cosine similarity of per-class mean features, {result["reference"]} vs '
                  'each domain', title_width=190)
    note = text_panel(['mean over the classes present in both domains; label-free inversion',
                       f'images per domain: {counts}'], figure.shape[1], 44, 0.45)
    bar = colour_bar(min(figure.shape[1], 500), low, high, 'cosine similarity')
    bar = np.concatenate([bar, text_panel([''], figure.shape[1] - bar.shape[1], bar.shape[0])],
                         axis=1) if bar.shape[1] < figure.shape[1] else bar
    return np.concatenate([figure, note, bar])


# ---------------------------------------------------------------- modes

def stability(model, args, files: Dict[str, List[Tuple[Path, Path]]]) -> Tuple[dict, np.ndarray]:
    """Per-class mean features per domain, step and level; cosines of the reference vs others."""
    extractor = model.backbone.encoder.extractor
    saved = list(extractor.config.saved_steps)
    num_classes = len(CLASSES)
    sums: Dict[str, Dict] = {}
    size = args.size
    with tqdm(total=sum(map(len, files.values())), desc='extracting', unit='img') as bar:
        for name, pairs in files.items():
            _, images, labels = _load([p for p, _ in pairs], [q for _, q in pairs],
                                      extractor.size_multiple, size)
            size = size or (images.shape[-1], images.shape[-2])  # every domain at one size
            raw = _extract(model, images, None, args, bar, fused=False)
            label_tensor = torch.from_numpy(np.stack(labels)).long()
            sums[name] = {(step, level.stride): class_sums(maps, label_tensor, num_classes)
                          for level in extractor.levels if level.stride in raw
                          for step, maps in zip(saved, split_steps(raw[level.stride], level))}
    reference, *targets = args.stability
    strides = [level.stride for level in extractor.levels]
    cells = []
    for target in targets:
        for step in saved:
            for stride in strides:
                cosines = class_cosines(sums[reference][step, stride], sums[target][step, stride])
                cells.append(dict(target=target, step=step, stride=stride,
                                  mean_cosine=float(np.mean(list(cosines.values())))
                                  if cosines else None,
                                  classes={CLASSES[c]: v for c, v in cosines.items()}))
    result = dict(reference=reference, targets=targets, saved_steps=saved, strides=strides,
                  timesteps={str(s): extractor.steps[s].timestep for s in saved},
                  image_size=list(size), images={n: len(p) for n, p in files.items()},
                  cells=cells)
    return result, stability_figure(result)


def _write_png(path: Path, figure: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(figure[..., ::-1])):
            raise OSError(f'could not write {path}')


def _csv(result: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['reference', 'target', 'step', 'timestep', 'stride', 'mean_cosine',
                     'classes'])
    for cell in result['cells']:
        value = '' if cell['mean_cosine'] is None else f'{cell["mean_cosine"]:.6f}'
        writer.writerow([result['reference'], cell['target'], cell['step'],
                         result['timesteps'][str(cell['step'])], cell['stride'], value,
                         len(cell['classes'])])
    return buffer.getvalue()


def main(argv: Optional[List[str]] = None) -> List[Path]:
    """Write the figure (and, with --stability, its numbers); return the files written."""
    args = parse_args(argv)
    paths = _image_paths(args.images) if args.stability is None else []
    labels = None
    if args.labels is not None:
        labels = [Path(p) for p in args.labels]
        if len(labels) != len(paths):
            raise ShowFeaturesError(f'--labels: expected one label map per image ({len(paths)}),'
                                    f' got {len(labels)}')
        missing = [str(p) for p in labels if not p.is_file()]
        if missing:
            raise FileNotFoundError(f'--labels: no file at {missing[0]}')
    cfg = load_config(args.config, args.cfg_options)
    files = {}
    if args.stability is not None:  # every domain's files found before the model is built
        files = {name: _domain_files(cfg, name, args.max_images) for name in args.stability}
    quiet_library_progress_bars()
    model = init_model(cfg, args.checkpoint, device=args.device,
                       allow_other_sd=args.allow_other_sd)
    if not isinstance(model.backbone, DIFF):
        raise ShowFeaturesError(f'{args.config}: the model\'s backbone is '
                                f'{type(model.backbone).__name__}; show_features needs DIFF')
    out = Path(args.out)
    if args.stability is not None:
        result, figure = stability(model, args, files)
        written = [out.with_suffix('.json'), out.with_suffix('.csv'), out]
        atomic_write_text(written[0], json.dumps(result, indent=1) + '\n')
        atomic_write_text(written[1], _csv(result))
        _write_png(out, figure)
        print(f'stability of {result["reference"]} vs {", ".join(result["targets"])}: '
              f'{out} (numbers in {written[0].name}, {written[1].name})')
        return written
    rgb, images, label_maps = _load(paths, labels, model.backbone.encoder.extractor.size_multiple,
                                    args.size)
    with tqdm(total=len(paths), desc='extracting', unit='img') as bar:
        features = _extract(model, images, label_maps, args, bar, fused=args.fused)
    names = [path.name for path in paths]
    preds = None
    if args.checkpoint is not None:
        preds = _predictions(model, paths, (images.shape[-1], images.shape[-2]))
    if args.fused:
        figure = fused_figure(features, rgb, label_maps, preds, names, args.checkpoint is not None)
    else:
        figure = steps_figure(model, features, rgb, label_maps, preds, names)
    _write_png(out, figure)
    print(f'{len(paths)} images, {"fused pyramid" if args.fused else "raw levels"}: {out}')
    return [out]


if __name__ == '__main__':
    run_cli(main, extra_errors=(ShowFeaturesError, ))
