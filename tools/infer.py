"""Segment your own images: a prediction figure per image, for a file or a folder.

Example::

    python tools/infer.py CONFIG CHECKPOINT street.png --out-dir preds/
    python tools/infer.py CONFIG CHECKPOINT my_photos/ --out-dir preds/ --device cuda

For every image ``x.png`` it writes ``x.png`` in the output folder: the image beside the
prediction (train ids coloured with the Cityscapes palette) with a class legend; with
``--labels`` also ``labels/x.png`` (raw train ids). Images of one folder that share a name
stem (``x.jpg`` and ``x.png``) get ``x_jpg.png`` and ``x_png.png``, so none is overwritten. A
file that cannot be read as an image is skipped with one line, and the others are processed.
Images are processed with the config's test pipeline (e.g. resized to 1024x512 for the
Cityscapes configs); predictions come back at the original image size.
"""
import argparse
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence

from tqdm import tqdm

from mmseg.apis import find_images, inference_model, init_model
from mmseg.apis.cli import DictAction, run_cli
from mmseg.datasets.transforms.loading import BadInputFileError
from mmseg.engine.hooks import read_rgb, write_prediction_images
from mmseg.engine.runner import quiet_library_progress_bars


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Segment images with a trained model.')
    parser.add_argument('config', help='config file the checkpoint was trained with')
    parser.add_argument('checkpoint', help='trained checkpoint (.pth)')
    parser.add_argument('images', help='an image file or a folder (searched recursively)')
    parser.add_argument('--out-dir', required=True, help='where predictions are written')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--labels', action='store_true',
                        help='also write the raw train ids under <out-dir>/labels/')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. model.test_cfg.mode=slide')
    parser.add_argument('--allow-other-sd', action='store_true',
                        help='use the checkpoint even if it was trained with another Stable '
                        'Diffusion folder than model_id (a warning instead of an error)')
    return parser.parse_args(argv)


def output_stems(images: Sequence[Path]) -> List[str]:
    """Output name stem of each image: its stem, plus its suffix where a sibling shares it."""
    counts = Counter((path.parent, path.stem) for path in images)
    return [f'{path.stem}_{path.suffix[1:].lower()}' if counts[(path.parent, path.stem)] > 1
            else path.stem for path in images]


def main(argv: Optional[List[str]] = None) -> List[Path]:
    """Segment the images; return the files written."""
    args = parse_args(argv)
    images = find_images(args.images)
    quiet_library_progress_bars()  # no 'Loading weights' bars while the model is built
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=args.cfg_options, allow_other_sd=args.allow_other_sd)
    out_dir = Path(args.out_dir)
    root = Path(args.images) if Path(args.images).is_dir() else Path(args.images).parent
    written: List[Path] = []
    skipped = 0
    progress = tqdm(list(zip(images, output_stems(images))), desc='segmenting', unit='img')
    for path, stem in progress:
        try:
            [sample] = inference_model(model, str(path))
        except (OSError, BadInputFileError) as error:  # not an image, truncated, unreadable
            progress.write(f'skipped {path}: {error}')
            skipped += 1
            continue
        label = sample.pred_sem_seg.data[0].cpu().numpy()
        # keep the input's sub-folders so equal names in different folders do not collide
        rel = path.relative_to(root).parent
        written += write_prediction_images(
            out_dir / rel, stem, read_rgb(str(path)), label,
            raw_dir=out_dir / 'labels' / rel if args.labels else None)
    note = f' ({skipped} unreadable file(s) skipped, named above)' if skipped else ''
    print(f'{len(images) - skipped} images segmented{note}; results in {out_dir}')
    return written


if __name__ == '__main__':
    run_cli(main)  # a missing or bad input: one line `error: ...`, exit status 2
