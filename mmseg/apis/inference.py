"""Build a segmentor from a config, load trained weights, and segment images.

Example::

    model = init_model('configs/diff/<config>.py', 'work_dirs/<run>/iter_40000.pth', 'cuda')
    [sample] = inference_model(model, 'street.png')
    label = sample.pred_sem_seg.data[0].cpu().numpy()     # (H, W) train ids
"""
import copy
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger, print_log

from mmseg.engine.checkpoint import (check_finite_weights, check_sd_fingerprint,
                                     extract_state_dict, load_checkpoint_safe,
                                     load_state_dict_strict, strip_prefix)
from mmseg.registry import MODELS, TRANSFORMS
from mmseg.structures import SegDataSample

from .config import load_config

ImageInput = Union[str, os.PathLike, np.ndarray]
# Prefix under which a UDA wrapper (DACS) keeps the segmentor it trains.
UDA_PREFIX = 'model.'


def segmentor_config(cfg: Config) -> dict:
    """The plain segmentor's model config (unwrapping a UDA wrapper such as DACS).

    A UDA wrapper only changes training; inference uses the segmentor it wraps
    (its ``model`` entry).
    """
    model_cfg = copy.deepcopy(cfg.model)
    from mmseg.models.uda.uda_decorator import UDADecorator
    cls = MODELS.get(model_cfg['type'])
    if cls is None:
        raise KeyError(f'model type {model_cfg["type"]!r} is not registered in mmseg.MODELS')
    if isinstance(cls, type) and issubclass(cls, UDADecorator):
        model_cfg = model_cfg['model']
    return model_cfg


def _choose_prefix(state_dict: Dict[str, torch.Tensor],
                   expected: Sequence[str]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Strip ``module.`` and, for a UDA wrapper's checkpoint, ``model.`` (anchored).

    Returns the weights for the segmentor and the keys left aside (the
    wrapper's own state, e.g. its EMA teacher), which are reported.
    """
    stripped, rest = strip_prefix(state_dict, 'module.')
    weights = {**rest, **stripped}
    expected = set(expected)
    inner, rest = strip_prefix(weights, UDA_PREFIX)
    # A checkpoint of a UDA wrapper: the segmentor sits under 'model.'.
    if inner and len(set(inner) & expected) > len(set(weights) & expected):
        return inner, sorted(rest)
    return weights, []


def load_weights(model: nn.Module, checkpoint: Union[str, os.PathLike],
                 allow_other_sd: bool = False) -> dict:
    """Load a checkpoint's trained weights into ``model`` (all of them, or fail loudly).

    Args:
        model: The segmentor.
        checkpoint: A ``.pth`` written by training or ``tools/publish_model.py``.
        allow_other_sd: Warn instead of failing when the checkpoint was trained with
            another Stable Diffusion folder than ``model`` uses.

    Raises:
        CheckpointMismatchError: listing missing and unexpected keys.
        NonFiniteWeightsError: naming the tensors holding NaN or inf.
        OtherStableDiffusionError: the checkpoint records another frozen model.
    """
    ckpt = load_checkpoint_safe(checkpoint, map_location='cpu')
    check_finite_weights(extract_state_dict(ckpt), str(checkpoint))
    check_sd_fingerprint(ckpt, model, str(checkpoint), allow_other=allow_other_sd)
    weights, aside = _choose_prefix(extract_state_dict(ckpt), model.state_dict().keys())
    if aside:
        print_log(f'{checkpoint}: using the UDA wrapper\'s segmentor (model.*); left aside '
                  f'{len(aside)} wrapper keys, e.g. {aside[:3]}', logger='current',
                  level=logging.INFO)
    load_state_dict_strict(model, weights, prefixes=(), source=str(checkpoint))
    return ckpt


def init_model(config: Union[str, os.PathLike, Config],
               checkpoint: Optional[Union[str, os.PathLike]] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None,
               allow_other_sd: bool = False) -> nn.Module:
    """Build the segmentor of ``config`` in eval mode, with ``checkpoint``'s weights.

    Args:
        config: Config file or object.
        checkpoint: A ``.pth`` written by training (or ``publish_model``);
            None keeps the initial weights.
        device: Device to put the model on.
        cfg_options: Overrides merged into the config (dotted keys).
        allow_other_sd: See :func:`load_weights`.

    Returns:
        nn.Module: the segmentor, with ``cfg`` attached.
    """
    if checkpoint is not None:  # a missing, corrupt or diverged file: before the slow build
        check_finite_weights(extract_state_dict(load_checkpoint_safe(checkpoint)),
                             str(checkpoint))
    cfg = load_config(config, cfg_options) if not isinstance(config, Config) else config
    if cfg_options and isinstance(config, Config):
        cfg.merge_from_dict(cfg_options)
    model = MODELS.build(segmentor_config(cfg))
    if hasattr(model, 'init_weights'):
        quiet_init_weights(model)
    if checkpoint is not None:
        load_weights(model, checkpoint, allow_other_sd=allow_other_sd)
    model.cfg = cfg
    return model.to(device).eval()


def quiet_init_weights(model: nn.Module) -> None:
    """``model.init_weights()`` without mmengine's per-parameter report on the console.

    Outside a Runner the current MMLogger has no log file, so mmengine prints a block
    "The value is the same before and after calling `init_weights`" for every parameter
    (867 for DIFF). Only that INFO report is held back; warnings still show.
    """
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def test_pipeline_config(cfg: Config) -> List[dict]:
    """The test pipeline of ``cfg`` (test, else val dataloader), without label loading."""
    for key in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset')
        if dataset and 'pipeline' in dataset:
            pipeline = dataset['pipeline']
            break
    else:
        pipeline = cfg.get('test_pipeline')
    if not pipeline:
        raise KeyError('config has no test pipeline (test_dataloader.dataset.pipeline, '
                       'val_dataloader.dataset.pipeline or test_pipeline)')
    return [copy.deepcopy(t) for t in pipeline if t['type'] != 'LoadAnnotations']


def _build_pipeline(cfg: Config, from_array: bool) -> List:
    steps = test_pipeline_config(cfg)
    if from_array:
        steps = [t for t in steps if t['type'] != 'LoadImageFromFile']
    return [TRANSFORMS.build(t) for t in steps]


def _prepare(image: ImageInput, pipelines: Dict[bool, List]) -> dict:
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'an image array must be (H, W, 3) uint8 BGR, got '
                             f'{image.shape} {image.dtype}')
        results = dict(img=image, img_path='', img_shape=image.shape[:2],
                       ori_shape=image.shape[:2])
        steps = pipelines[True]
    else:
        results = dict(img_path=str(image))
        steps = pipelines[False]
    for transform in steps:
        results = transform(results)
    return results


@torch.no_grad()
def inference_model(model: nn.Module, images: Union[ImageInput, Sequence[ImageInput]],
                    batch_size: int = 1) -> List[SegDataSample]:
    """Segment image files or BGR uint8 arrays with the config's test pipeline.

    Args:
        model: From :func:`init_model` (has ``cfg``).
        images: One or several file paths or (H, W, 3) BGR uint8 arrays.
        batch_size: Images per forward pass.

    Returns:
        list[SegDataSample]: one per image, with ``pred_sem_seg`` (1, H, W)
        and ``seg_logits`` at the image's original size.
    """
    single = isinstance(images, (str, os.PathLike, np.ndarray))
    images = [images] if single else list(images)
    pipelines = {flag: _build_pipeline(model.cfg, flag) for flag in (False, True)}
    results: List[SegDataSample] = []
    for start in range(0, len(images), batch_size):
        packed = [_prepare(img, pipelines) for img in images[start:start + batch_size]]
        batch = dict(inputs=[p['inputs'] for p in packed],
                     data_samples=[p['data_samples'] for p in packed])
        results.extend(model.test_step(batch))
    return results


def find_images(path: Union[str, os.PathLike],
                suffixes: Sequence[str] = ('.png', '.jpg', '.jpeg', '.bmp')) -> List[Path]:
    """``path`` itself if it is a file, else the images under the folder (sorted, recursive)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f'no image file or folder at {path}')
    found = sorted(p for p in path.rglob('*') if p.suffix.lower() in suffixes)
    if not found:
        raise FileNotFoundError(f'no images ({", ".join(suffixes)}) under {path}')
    return found
