"""Helpers for the merged-extraction tests of the segmentor and DACS (no test here).

Models are built from the experiment configs with the tiny Stable Diffusion folder. Training
passes draw from the global RNG; :class:`SeededTrajectories` gives every trajectory fresh
per-image generators seeded by its running number instead, so a merged and a separate run of
the same step draw the same noise.
"""
import copy
import dataclasses
import functools
from pathlib import Path
from typing import List, Tuple

import torch
from mmengine.config import Config
from mmengine.structures import PixelData

import mmseg.models  # noqa: F401  (registers the models)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

REPO = Path(__file__).resolve().parents[2]
EXP50 = REPO / 'configs/diff/diff-daformer_sd21_srconly-40k_gta2cs-512x512.py'
DACS = REPO / 'configs/diff/diff-daformer_sd21_dacs-40k_gta2cs-512x512.py'
# Narrow widths, and a short inversion for the equivalence tests (not the call counts).
SMALL_WIDTHS = dict(projection_channels=[64, 128, 128], stride4_channels=32)
SHORT = dict(timesteps=[40, 30, 14, 11, 8, 4], saved_steps=[4, 1])
SMALL_HEAD = dict(in_channels=[32, 64, 128, 128], channels=16,
                  decoder_params=dict(embed_dims=16,
                                      fusion_cfg=dict(dilations=(1, 6, 12, 18), sep=True)))
PROMPTED = (1, 3, 12)  # classes with a prompt in diff_config.yaml; 0 and 2 have none


def build_from_config(path: Path, tiny_sd_dir: Path, small: bool = False, short: bool = False,
                      seed: int = 0, **overrides):
    """The config's model with the tiny SD folder: narrow widths if ``small``, the short
    inversion if ``short`` (else the released schedule: 34 UNet calls), DIFF ``overrides``."""
    cfg = copy.deepcopy(Config.fromfile(str(path)).model)
    segmentor = cfg.model if cfg.type == 'DACS' else cfg
    segmentor.backbone.overrides = dict(model_id=str(tiny_sd_dir),
                                        **(SMALL_WIDTHS if small else {}),
                                        **(SHORT if short else {}), **overrides)
    if small:
        segmentor.decode_head.update(SMALL_HEAD)
    torch.manual_seed(seed)
    return MODELS.build(cfg)


def unet_of(model):
    """The frozen UNet of a segmentor or DACS model."""
    segmentor = getattr(model, 'model', model)
    return segmentor.backbone.encoder.extractor.unet


class UNetRows:
    """Counts UNet calls and their batch rows with a forward pre-hook (independent of
    ``last_usage``)."""

    def __init__(self, unet: torch.nn.Module):
        self.rows: List[int] = []
        self._handle = unet.register_forward_pre_hook(self._hook)

    def _hook(self, module, args) -> None:
        self.rows.append(args[0].shape[0])

    def remove(self) -> None:
        self._handle.remove()


class SeededTrajectories:
    """Wraps ``extractor.extract``: trajectory n gets generators seeded 1000 n + image."""

    def __init__(self, extractor):
        self.count = 0
        self._extract = functools.partial(type(extractor).extract, extractor)
        extractor.extract = self  # the instance attribute shadows the method (or a wrapper)

    def __call__(self, trajectories, strides=None):
        seeded = []
        for trajectory in trajectories:
            generators = [torch.Generator().manual_seed(1000 * self.count + i)
                          for i in range(trajectory.images.shape[0])]
            seeded.append(dataclasses.replace(trajectory, generator=generators))
            self.count += 1
        return self._extract(seeded, strides)


def labels_with(batch: int, k: int, size: int = 64) -> torch.Tensor:
    """(B, 1, size, size) labels holding k prompted classes (over the batch), 0, 2 and 255."""
    labels = torch.zeros(batch, 1, size, size, dtype=torch.long)
    labels[:, :, :4] = 255
    labels[:, :, -8:, :8] = 2
    for index, cls in enumerate(PROMPTED[:k]):
        labels[index % batch, :, 8 + 8 * index:16 + 8 * index, 8:40] = cls
    return labels


def ipkl_batch(batch: int, k: int, size: int = 64, seed: int = 1
               ) -> Tuple[torch.Tensor, List[SegDataSample]]:
    """Preprocessed inputs in [-1, 1] and samples whose labels hold k prompted classes."""
    inputs = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    samples = []
    for index, label in enumerate(labels_with(batch, k, size)):
        sample = SegDataSample(metainfo=dict(img_path=f'src{index}.png', img_shape=(size, size),
                                             ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return inputs * 2 - 1, samples


def uda_data(batch: int, k: int, size: int = 64, seed: int = 1) -> dict:
    """A collated UDA batch as the dataloader gives it (uint8 BGR, int64 labels)."""
    gen = torch.Generator().manual_seed(seed)
    data = dict(inputs=[], data_samples=[], target_inputs=[], target_data_samples=[])
    for index, label in enumerate(labels_with(batch, k, size)):
        meta = dict(img_shape=(size, size), ori_shape=(size, size))
        source = SegDataSample(metainfo=dict(meta, img_path=f'src{index}.png'))
        source.gt_sem_seg = PixelData(data=label)
        target = SegDataSample(metainfo=dict(meta, img_path=f'tgt{index}.png'))
        target.gt_sem_seg = PixelData(data=torch.full_like(label, 255))
        data['inputs'].append(torch.randint(0, 256, (3, size, size), generator=gen,
                                            dtype=torch.uint8))
        data['target_inputs'].append(torch.randint(0, 256, (3, size, size), generator=gen,
                                                   dtype=torch.uint8))
        data['data_samples'].append(source)
        data['target_data_samples'].append(target)
    return data


def assert_close_to_magnitude(actual: torch.Tensor, expected: torch.Tensor, name: str = '',
                              relative: float = 1e-5, floor: float = 0.0) -> None:
    """Equal to float32 tolerance: ``relative`` of the tensor's largest magnitude (at least
    ``floor``, for tensors that are zero up to rounding, e.g. a bias before a GroupNorm)."""
    actual, expected = actual.detach(), expected.detach()
    scale = max(float(expected.abs().max()) if expected.numel() else 0.0, floor)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=relative * scale + 1e-12,
                               msg=lambda m: f'{name}: {m}')


def assert_same_gradients(actual: dict, expected: dict, relative: float = 1e-2) -> None:
    """Same parameters with gradients, equal to ``relative`` of each tensor's magnitude
    (floored at 1e-3 of the largest gradient of all).

    Looser than the features' 1e-5: the consistency loss is the MSE of two nearly equal
    logit maps, so its gradient is a difference of nearly equal numbers and carries the
    features' rounding differences (batched vs separate UNet rows) amplified, measured up
    to 3e-3 of a tensor's magnitude. Repeating the same run gives identical gradients.
    """
    assert actual.keys() == expected.keys() and expected
    largest = max(float(g.abs().max()) for g in expected.values())
    for name, grad in actual.items():
        assert_close_to_magnitude(grad, expected[name], name, relative, floor=1e-3 * largest)


def extract_separately(extractor) -> None:
    """Make ``extractor.extract`` run every trajectory alone, in order (the release's separate
    passes): the reference for the merged extraction."""
    merged = extractor.extract
    extractor.extract = lambda trajectories, strides=None: [
        features for trajectory in trajectories for features in merged([trajectory], strides)]
