"""Write small synthetic datasets in the real raw layouts, then run the real converters.

Usage: ``python tools/make_synthetic_data.py --out data/synthetic``. Writes
``<out>/{gta,synthia,cityscapes,acdc,dark_zurich,bdd100k,mapillary}`` (see data/README.md
for each layout): procedural street scenes over the 19 Cityscapes classes, rendered as a
clean saturated game (GTA, SYNTHIA), real-looking cameras (Cityscapes, BDD100K, Mapillary),
fog / rain / snow / night (ACDC) and night with lights (Dark Zurich). Deterministic by
seed. A domain whose ``.complete`` marker matches the requested settings is left alone.
"""
import argparse
import json
import logging
import shutil
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from mmseg.utils import atomic_write_text
from tools.convert_datasets import cityscapes, gta, mapillary, synthia
from tools.synthetic import writers

logger = logging.getLogger(__name__)

DOMAINS = ('gta', 'synthia', 'cityscapes', 'acdc', 'dark_zurich', 'bdd100k', 'mapillary')
#: Bump when the generator changes, so stale synthetic data is rewritten.
GENERATOR_VERSION = 3
MARKER = '.complete'


def _write_domain(domain: str, out: Path, seed: int, num_source: int, num_train: int, num_val: int,
                  source_size: Tuple[int, int], target_size: Tuple[int, int],
                  num_test: int = 0) -> None:
    """Raw files of one domain, then its converter (where the real data needs one).

    Cityscapes, ACDC and Dark Zurich also get ``num_test`` unlabelled test images (the
    benchmarks with a test server).
    """
    test = dict(test=num_test) if num_test else {}
    if domain == 'gta':
        writers.write_gta(out, seed, num_source, source_size)
        gta.convert(out)
    elif domain == 'synthia':
        writers.write_synthia(out, seed, num_source, source_size)
        synthia.convert(out)
    elif domain == 'cityscapes':
        writers.write_cityscapes(out, seed, dict(train=num_train, val=num_val, **test), target_size)
        cityscapes.convert(out)
    elif domain == 'mapillary':
        writers.write_mapillary(out, seed, dict(training=num_train, validation=num_val),
                                target_size)
        mapillary.convert(out)
    else:  # ACDC, Dark Zurich and BDD100K release train-id labels: nothing to convert
        write = dict(acdc=writers.write_acdc,
                     dark_zurich=writers.write_dark_zurich,
                     bdd100k=writers.write_bdd100k)[domain]
        counts = dict(train=num_train, val=num_val, **({} if domain == 'bdd100k' else test))
        write(out, seed, counts, target_size)


def prepare_synthetic_data(root: Union[str, Path],
                           seed: int = 0,
                           *,
                           num_source: int = 24,
                           num_train: int = 8,
                           num_val: int = 8,
                           num_test: int = 4,
                           source_size: Tuple[int, int] = (256, 144),
                           target_size: Tuple[int, int] = (256, 128),
                           domains: Sequence[str] = DOMAINS) -> Path:
    """Write (or reuse) the synthetic datasets under ``root``; return ``root``.

    Args:
        root: Output folder; each domain goes to ``root/<domain>``.
        seed: Seed of every image (with domain, split and index).
        num_source: Images of the source sets (GTA, SYNTHIA).
        num_train: Training images of each target set (labelled except Dark Zurich).
        num_val: Validation images of each target set.
        num_test: Unlabelled test images of Cityscapes, ACDC (one condition each in turn)
            and Dark Zurich.
        source_size: (width, height) of source images.
        target_size: (width, height) of target images.
        domains: Which of :data:`DOMAINS` to write.

    Returns:
        ``root`` as a :class:`Path`.
    """
    root = Path(root)
    unknown = set(domains) - set(DOMAINS)
    if unknown:
        raise ValueError(f'unknown synthetic domains {sorted(unknown)}; choose from {DOMAINS}')
    settings = dict(version=GENERATOR_VERSION,
                    seed=seed,
                    num_source=num_source,
                    num_train=num_train,
                    num_val=num_val,
                    num_test=num_test,
                    source_size=list(source_size),
                    target_size=list(target_size))
    for domain in domains:
        out, marker = root / domain, root / domain / MARKER
        if marker.is_file() and json.loads(marker.read_text()) == settings:
            continue
        if out.exists():  # partial or made with other settings: start over
            shutil.rmtree(out)
        _write_domain(domain, out, seed, num_source, num_train, num_val, tuple(source_size),
                      tuple(target_size), num_test)
        atomic_write_text(marker, json.dumps(settings))
        logger.info('synthetic %s written to %s', domain, out)
    return root


def main(argv: Optional[Sequence[str]] = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path('data/synthetic'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-source', type=int, default=24)
    parser.add_argument('--num-train', type=int, default=8)
    parser.add_argument('--num-val', type=int, default=8)
    parser.add_argument('--num-test', type=int, default=4,
                        help='unlabelled test images of Cityscapes, ACDC and Dark Zurich')
    parser.add_argument('--source-size', type=int, nargs=2, default=(256, 144), metavar=('W', 'H'))
    parser.add_argument('--target-size', type=int, nargs=2, default=(256, 128), metavar=('W', 'H'))
    parser.add_argument('--domains', nargs='+', default=list(DOMAINS), choices=DOMAINS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    return prepare_synthetic_data(args.out,
                                  args.seed,
                                  num_source=args.num_source,
                                  num_train=args.num_train,
                                  num_val=args.num_val,
                                  num_test=args.num_test,
                                  source_size=tuple(args.source_size),
                                  target_size=tuple(args.target_size),
                                  domains=args.domains)


if __name__ == '__main__':
    main()
