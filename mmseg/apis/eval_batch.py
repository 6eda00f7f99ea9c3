"""One config key for the evaluation batch size: ``eval_batch_size``.

The val and test dataloaders of every domain (the main one and each ``extra_domains`` entry
of the multi-domain loops) take their ``batch_size`` from it, so a child config or
``--cfg-options eval_batch_size=4`` changes all of them; ``tools/test.py --batch-size N``
sets it too. Predictions do not depend on it (per-image seeded noise; images of different
sizes are evaluated in groups of equal size, EncoderDecoder.predict).
"""
from typing import Iterator, Optional

from mmengine.config import Config

KEY = 'eval_batch_size'


def _eval_loaders(cfg: Config) -> Iterator[dict]:
    for stage in ('val', 'test'):
        loader = cfg.get(f'{stage}_dataloader')
        if loader is not None:
            yield loader
        for extra in ((cfg.get(f'{stage}_cfg') or {}).get('extra_domains') or {}).values():
            if extra is not None:
                yield extra


def apply_eval_batch_size(cfg: Config, batch_size: Optional[int] = None) -> Config:
    """Set every val/test loader's ``batch_size`` to ``batch_size`` or ``cfg.eval_batch_size``.

    A config without the key (and no ``batch_size`` given) is returned unchanged.

    Raises:
        ValueError: the batch size is not a positive integer.
    """
    if batch_size is not None:
        cfg[KEY] = batch_size
    value = cfg.get(KEY)
    if value is None:
        return cfg
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{KEY} must be a positive integer (images per evaluation batch), '
                         f'got {value!r}')
    for loader in _eval_loaders(cfg):
        loader['batch_size'] = value
    return cfg
