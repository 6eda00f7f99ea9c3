"""Full-size DIFF models on a fake CUDA device: shapes, dtypes and devices without data or GPU.

``torch._subclasses.fake_tensor.FakeTensorMode`` gives every tensor a shape, a dtype and a
device but no values, so the real Stable Diffusion 2.1 architecture (random weights, nothing
downloaded) runs its whole forward "on CUDA" in seconds and without memory. Used by the
placement tests and by ``tools/plan_gpu.py``.

Facts this module works around (torch 2.x):

- ``module.to(dtype)`` swaps parameters, which fails on fake parameters while the mode's
  converter holds a weak reference to them ("Couldn't swap"); :func:`fake_mode` clears that
  memo right before each swap.
- ``torch.autocast('cuda')`` is disabled when CUDA is not available, so the frozen weights
  are held in float32 on the fake device (``dtype=float32``); :func:`check_half_precision`
  checks the float16 set-up without running it.
- Values read from tensors to Python are given through the project's one seam,
  ``mmseg.models.backbones.diff.host_reads`` (:func:`supplied_reads`).
"""
import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
import torch.utils
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

REPO_ROOT = Path(__file__).resolve().parents[1]
DACS_CONFIG = REPO_ROOT / 'configs/diff/diff-daformer_sd21_dacs-40k_gta2cs-512x512.py'
# Random-number ops whose CPU outputs are host draws (per-image generator noise, DACS's
# augmentation and ClassMix draws); arithmetic on host draws alone stays a host draw.
RANDOM_OPS = ('randn', 'rand', 'randint', 'randperm', 'normal', 'uniform', 'bernoulli',
              'multinomial', 'exponential', 'random_')


class DeviceRecorder(TorchDispatchMode):
    """Records every op whose output is a CPU tensor that is not a host draw.

    A CPU output is a host draw when the op is a random-number op (:data:`RANDOM_OPS`) or when
    all its tensor inputs are host draws (e.g. ``low + (high - low) * rand``); moving a draw
    to the device is fine. Anything else on the CPU (a tensor the computation forgot to put
    on the device) is listed in :attr:`cpu_ops`.
    """

    def __init__(self):
        super().__init__()
        self.cpu_ops: List[str] = []
        self._draws = WeakIdKeyDictionary()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        name = func.__name__
        # lift_fresh: a tensor made from Python values (e.g. ClassMix's class list), then
        # copied to the device.
        drawn = any(op in name for op in RANDOM_OPS + ('lift_fresh', )) or (
            bool(inputs) and all(t.device.type == 'cpu' and t in self._draws for t in inputs))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type == 'cpu':
                if drawn:
                    self._draws[tensor] = True
                else:
                    self.cpu_ops.append(name)
        return out


@contextlib.contextmanager
def fake_mode() -> Iterator[Any]:
    """A ``FakeTensorMode`` (real tensors are not accepted) in which ``Module.to`` works."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    mode = FakeTensorMode(allow_non_fake_inputs=False)
    swap = torch.utils.swap_tensors

    def swap_fake(first, second):
        mode.fake_tensor_converter.tensor_memo.clear()
        return swap(first, second)

    torch.utils.swap_tensors = swap_fake
    try:
        with mode:
            yield mode
    finally:
        torch.utils.swap_tensors = swap


def supplied_reads(classes: Sequence[int], iteration: int = 0, draw: float = 0.0):
    """The host reads of a fake run: the label maps hold ``classes``, every pixel is valid,
    DACS is at ``iteration`` and its augmentation draws are ``draw``.

    The default draw 0 leaves out colour jitter and blur: kornia's jitter checks its random
    factors on the host, which fake tensors cannot answer (both are image-only operations on
    the device the images are on).
    """
    from mmseg.models.backbones.diff import host_reads
    return host_reads.supply(label_classes=lambda tensor: list(classes),
                             valid_pixels=lambda tensor: tensor.numel(),
                             iteration=lambda tensor: iteration,
                             augmentation_draw=lambda tensor: draw)


def sd21_components(device: str = 'cuda'):
    """SD 2.1 with random weights built inside the current fake mode on ``device``.

    The scheduler is built outside the mode: its noise schedule is configuration, read on
    the host when the extractor is built.
    """
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    from mmseg.models.backbones.diff.architectures import SD21, build_random_components
    components = build_random_components(SD21, seed=0, device=torch.device(device))
    with unset_fake_temporarily():
        scheduler = type(components.scheduler).from_config(components.scheduler.config)
    return dataclasses.replace(components, scheduler=scheduler)


def experiment_config(config: Path, overrides: Optional[Dict[str, Any]] = None):
    """The experiment's config with random SD 2.1 weights and DIFF ``overrides``.

    The frozen parts are held in float32 (autocast does not run on a fake device). The data
    preprocessor does not normalise: the fake runs get their images normalised.
    """
    from mmseg.apis import load_config
    cfg = load_config(config)
    segmentor = cfg.model.model if cfg.model.get('type') == 'DACS' else cfg.model
    # Images are given normalised; DACS would read the normalisation from its buffers.
    segmentor.data_preprocessor = dict(segmentor.data_preprocessor, mean=None, std=None)
    backbone = segmentor.backbone
    backbone.overrides = {**(backbone.get('overrides') or {}, 'model_id': 'random-sd21',
                          'dtype': 'float32', **(overrides or {})}
    return cfg


def build_model(cfg, components, device: str = 'cuda') -> torch.nn.Module:
    """``cfg.model`` (segmentor or DACS) built on ``device`` inside the current fake mode."""
    from unittest import mock

    from mmseg.models.backbones.diff import encoder as encoder_module
    from mmseg.registry import MODELS
    with mock.patch.object(encoder_module, 'load_sd_components', lambda config: components), \
            torch.device(device):
        return MODELS.build(cfg.model)


def fake_batch(batch: int, height: int, width: int, classes: Sequence[int], with_labels: bool,
               device: str = 'cuda'):
    """(images in [-1, 1], data samples) on ``device``: label maps with stripes of ``classes``
    plus unprompted classes and an ignored band (``benchmark_train.synthetic_batch``)."""
    from tools.benchmark_train import synthetic_batch
    data = synthetic_batch(batch, height, width, classes, with_labels)
    images = torch.stack(data['inputs']).to(device).float() / 127.5 - 1
    for sample in data['data_samples']:
        sample.set_metainfo(dict(padding_size=(0, 0, 0, 0), batch_input_shape=(height, width)))
        if with_labels:
            sample.gt_sem_seg.data = sample.gt_sem_seg.data.to(device)
    return images, data['data_samples']


def label_classes(classes: Sequence[int]) -> List[int]:
    """Every value of :func:`fake_batch`'s label maps: ``classes``, the fill, ignore."""
    from tools.benchmark_train import IGNORE_INDEX, UNPROMPTED_FILL
    return sorted({*classes, *UNPROMPTED_FILL, IGNORE_INDEX})


class UNetRows:
    """Rows of every UNet call (a forward pre-hook), independent of ``last_usage``."""

    def __init__(self, unet: torch.nn.Module):
        self.rows: List[int] = []
        self._handle = unet.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs) -> None:
        self.rows.append(int((args[0] if args else kwargs['sample']).shape[0]))

    def remove(self) -> None:
        self._handle.remove()


def check_half_precision(extractor: torch.nn.Module, trained: torch.nn.Module) -> Dict[str, Any]:
    """Holds the frozen parts in float16 and reports the dtypes of frozen and trained weights."""
    extractor.hold_precision(torch.float16)
    frozen = {p.dtype for module in (extractor.unet, extractor.vae) for p in module.parameters()}
    return dict(frozen={str(d) for d in frozen},
                trained={str(p.dtype) for p in trained.parameters() if p.requires_grad})
