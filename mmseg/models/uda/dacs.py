"""DACS self-training with an EMA teacher and ClassMix, for the DIFF segmentor.

Design follows DAFormer's ``DACS`` (Hoyer et al., CVPR 2022; DACS: Tranheden
et al., WACV 2021) as carried in the DIFF release (docs/method.md §2.2-2.3).
Modifications: explicit constructor arguments; the teacher shares the frozen
Stable Diffusion with the student (``EMATeacher``); the algorithm also runs
inside ``loss()`` for DDP; the ImageNet feature distance is not offered
(meaningless for DIFF, docs/differences.md §3); debug images via a hook-given folder.
"""
import contextlib
from pathlib import Path
from typing import Callable, ContextManager, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.optim import OptimWrapper
from mmengine.structures import PixelData

from mmseg.models.backbones.diff import host_reads
from mmseg.models.backbones.shared_extraction import Trajectory
from mmseg.models.utils.dacs_transforms import (color_jitter, denormalize, draw_blur_sigmas,
                                                gaussian_blur, get_class_masks, one_mix)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList,
                         add_prefix)
from .debug_images import save_debug_images
from .ema_teacher import EMATeacher, confidence_pseudo_label
from .uda_decorator import UDADecorator


class MixedBatch(NamedTuple):
    """ClassMix output: images (B, 3, H, W), labels (B, H, W), weights (B, H, W), masks."""
    images: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    masks: torch.Tensor


@MODELS.register_module()
class DACS(UDADecorator):
    """Domain-adaptive self-training: EMA teacher pseudo-labels + ClassMix.

    One iteration: (1) update the teacher, (2) source loss (the wrapped
    segmentor's ``loss``: IPKL when its ``train_cfg`` enables it),
    (3) teacher pseudo-labels on the target with a confidence weight,
    (4) ClassMix source onto target, then colour jitter and blur, (5) weighted
    loss of the student on the mixed images (label-free backbone pass),
    (6) debug images.

    The segmentor's backbone is used through its two stages (``stages``, a
    ``SharedExtractionBackbone``): the source trajectories of (2) and the
    teacher's target trajectory of (3) are ONE extraction (DIFF: shared UNet
    calls, 34 per iteration for all of them with the exp-50 schedule); the
    student decodes the source features with gradients, the teacher decodes
    the target features with its EMA weights. The mixed pass of (5) needs the
    pseudo-labels and extracts after them. UNet calls are counted from
    outside (a forward hook on the UNet), not by this class.

    Two entry points run the same sequence of steps (``_iteration``):

    - ``train_step`` (single process): DAFormer's two backward passes, source
      then mixed, so the source graph is freed before the mixed forward
      (lower peak memory), then one optimiser step.
    - ``loss`` (used by mmengine's DDP wrapper, which never calls a model's
      ``train_step``; docs/pitfalls.md #13): returns the source and
      ``mix.*`` losses together for one backward of their sum. The gradient is
      the same sum of the two gradients; the teacher update is at its start.

    With ``source_only=True`` no teacher is built and only step (2) runs (the
    release's exp-50 mode, ``dacs_srconly``).

    Args:
        model (dict): the wrapped segmentor's config.
        max_iters (int): training length; a last set of debug images is
            written at iteration ``max_iters - 1``.
        alpha (float): EMA momentum bound. Defaults to 0.99.
        pseudo_threshold (float): pseudo-label confidence threshold.
            Defaults to 0.968.
        pseudo_weight_ignore_top (int): top rows with pseudo weight 0.
        pseudo_weight_ignore_bottom (int): bottom rows with pseudo weight 0.
        mix (str): 'class' (ClassMix), the only mixing offered.
        blur (bool): Gaussian blur on mixed images. Defaults to True.
        color_jitter_strength (float): kornia ColorJitter strength. Defaults to 0.2.
        color_jitter_probability (float): jitter applied when U(0,1) exceeds
            it (as released). Defaults to 0.2.
        blur_probability (float): blur applied when U(0,1) exceeds it. Defaults to 0.5.
        blur_sigma_range (tuple[float, float]): sigma ~ U(low, high).
            Defaults to (0.15, 1.15).
        blur_kernel_ratio (float): kernel side / image side (made odd). Defaults to 0.1.
        debug_img_interval (int): write debug images every N iterations (0: never).
        source_only (bool): train on the source only. Defaults to False.
        data_preprocessor (dict, optional): see :class:`UDADecorator`.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 model: ConfigType,
                 max_iters: int,
                 alpha: float = 0.99,
                 pseudo_threshold: float = 0.968,
                 pseudo_weight_ignore_top: int = 0,
                 pseudo_weight_ignore_bottom: int = 0,
                 mix: str = 'class',
                 blur: bool = True,
                 color_jitter_strength: float = 0.2,
                 color_jitter_probability: float = 0.2,
                 blur_probability: float = 0.5,
                 blur_sigma_range: Sequence[float] = (0.15, 1.15),
                 blur_kernel_ratio: float = 0.1,
                 debug_img_interval: int = 1000,
                 source_only: bool = False,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(model, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if mix != 'class':
            raise ValueError(f"DACS: mix must be 'class' (ClassMix), got {mix!r}")
        if not 0.0 < pseudo_threshold <= 1.0:
            raise ValueError(f'DACS: pseudo_threshold must be in (0, 1], got {pseudo_threshold}')
        if len(blur_sigma_range) != 2 or not 0 < blur_sigma_range[0] <= blur_sigma_range[1]:
            raise ValueError(f'DACS: blur_sigma_range must be (low, high) with 0 < low <= high, '
                             f'got {blur_sigma_range}')
        self.max_iters = int(max_iters)
        self.pseudo_threshold = pseudo_threshold
        self.pseudo_weight_ignore_top = pseudo_weight_ignore_top
        self.pseudo_weight_ignore_bottom = pseudo_weight_ignore_bottom
        self.blur = blur
        self.color_jitter_strength = color_jitter_strength
        self.color_jitter_probability = color_jitter_probability
        self.blur_probability = blur_probability
        self.blur_sigma_range = tuple(blur_sigma_range)
        self.blur_kernel_ratio = blur_kernel_ratio
        self.debug_img_interval = debug_img_interval
        self.source_only = source_only
        self.teacher: Optional[EMATeacher] = None if source_only else EMATeacher(self.model, alpha)
        # A buffer, so a resumed run continues the EMA schedule where it stopped.
        self.register_buffer('local_iter', torch.zeros((), dtype=torch.long))
        # Set by UDADebugHook to <work_dir>/debug; None writes nothing.
        self.debug_dir: Optional[Path] = None
        self._mean, self._std = self._normalisation()

    def _normalisation(self) -> Tuple[List[float], List[float]]:
        """The preprocessor's per-channel mean/std (identity when it does not normalise)."""
        mean = getattr(self.data_preprocessor, 'mean', None)
        std = getattr(self.data_preprocessor, 'std', None)
        if mean is None or std is None:
            return [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
        return mean.flatten().tolist(), std.flatten().tolist()

    # ------------------------------------------------------------- entry points
    def train_step(self, data: dict, optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One single-process iteration: two backward passes, one optimiser step.

        The step is taken every iteration (no gradient accumulation); gradient
        clipping and AMP loss scaling come from ``optim_wrapper`` as usual.
        """
        with optim_wrapper.optim_context(self):
            batch = self.data_preprocessor(data, True)
        parts = self._iteration(batch, lambda losses: self._backward(losses, optim_wrapper),
                                lambda: optim_wrapper.optim_context(self))
        log_vars = parts[0] if len(parts) == 1 else self._merge_log_vars(*parts)
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        return log_vars

    def loss(self,
             inputs: torch.Tensor,
             data_samples: SampleList,
             target_inputs: Optional[torch.Tensor] = None,
             target_data_samples: OptSampleList = None) -> Dict[str, torch.Tensor]:
        """The whole iteration's losses for one backward (DDP path)."""
        batch = dict(inputs=inputs, data_samples=data_samples, target_inputs=target_inputs,
                     target_data_samples=target_data_samples)
        losses: Dict[str, torch.Tensor] = {}
        for part in self._iteration(batch, lambda part: part, contextlib.nullcontext):
            losses.update(part)
        return losses

    # -------------------------------------------------------------------- steps
    def _iteration(self, batch: dict, finish: Callable[[Dict[str, torch.Tensor]], Dict],
                   context: Callable[[], ContextManager]) -> List[Dict]:
        """Steps (1)-(6) of one iteration, in order; the one sequence of both entry points.

        ``finish`` gets the source losses, then the mixed losses, as each is ready
        (``train_step``: a backward pass, so the source graph is freed before the mixed
        forward; ``loss``: kept for one backward of their sum); its results are returned.
        ``context`` opens the optimiser's context (AMP) around each forward.
        """
        iteration = self._update_teacher()
        inputs, samples = batch['inputs'], batch['data_samples']
        trajectories = self.model.training_trajectories(inputs, samples)
        target = None if self.source_only else self._target(batch)
        if target is not None:  # the teacher's encode_decode pass: label-free, padded
            trajectories.append(Trajectory(self.model.pad_for_backbone(target[0])))
        with context():
            features = self.model.stages.extract(trajectories)
            sources = len(features) - (target is not None)
            source_losses = self._source_losses(features[:sources], samples)
        parts = [finish(source_losses)]
        if target is None:
            return parts
        target_features = features[-1]
        del features  # the source features go with the source graph
        target_inputs, target_samples = target
        with context():
            pseudo_label, pseudo_weight = self._pseudo_label(target_features,
                                                             tuple(target_inputs.shape[2:]))
        del target_features
        mixed = self._mix(inputs, samples, target_inputs, pseudo_label, pseudo_weight)
        with context():
            mix_losses = self._mixed_losses(mixed, target_samples, pseudo_weight)
        parts.append(finish(mix_losses))
        self._maybe_save_debug_images(iteration, batch, target_inputs, pseudo_label,
                                      pseudo_weight, mixed)
        return parts

    def _update_teacher(self) -> int:
        """EMA update of the teacher from the student; returns this iteration's index."""
        iteration = int(host_reads.item('iteration', self.local_iter))
        if self.teacher is not None:
            self.teacher.update(self.model, iteration)
        self.local_iter += 1
        return iteration

    def _source_losses(self, features: list, samples: SampleList) -> Dict[str, torch.Tensor]:
        """Step (2): the student's supervised loss on the source trajectories' features
        (IPKL when the segmentor enables it)."""
        return self.model.decode_losses(features, samples)

    @staticmethod
    def _target(batch: dict) -> Tuple[torch.Tensor, SampleList]:
        if batch.get('target_inputs') is None:
            raise ValueError('DACS: the batch has no target_inputs; train on a UDADataset '
                             '(source + target items) or set source_only=True')
        samples = batch.get('target_data_samples')
        if samples is None:
            samples = [SegDataSample() for _ in range(batch['target_inputs'].shape[0])]
        return batch['target_inputs'], samples

    def _pseudo_label(self, target_features, size: Tuple[int, int]
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher argmax labels (B, H, W) and the confidence weight (B, H, W), from the
        extracted features of the padded target images (the teacher runs only the trained
        stage, with its EMA weights)."""
        logits = self.teacher.logits_from_features(self.model, target_features, size)
        return confidence_pseudo_label(logits, self.pseudo_threshold,
                                       self.pseudo_weight_ignore_top,
                                       self.pseudo_weight_ignore_bottom)

    def _mix(self, source_inputs: torch.Tensor, source_samples: SampleList,
             target_inputs: torch.Tensor, pseudo_label: torch.Tensor,
             pseudo_weight: torch.Tensor) -> MixedBatch:
        """ClassMix per image (image, label, weight), then colour jitter and blur."""
        if source_inputs.shape != target_inputs.shape:
            raise ValueError(f'DACS: source batch {tuple(source_inputs.shape)} and target batch '
                             f'{tuple(target_inputs.shape)} must have the same shape for ClassMix '
                             '(use the same crop size for both)')
        source_label = torch.stack([s.gt_sem_seg.data for s in source_samples])[:, 0]
        masks = get_class_masks(source_label)
        source_weight = torch.ones_like(pseudo_weight)
        images, labels, weights = [], [], []
        for i, mask in enumerate(masks):
            mask = mask.to(source_inputs.device)
            images.append(one_mix(mask, source_inputs[i], target_inputs[i]))
            labels.append(one_mix(mask, source_label[i], pseudo_label[i]))
            weights.append(one_mix(mask, source_weight[i], pseudo_weight[i]))
        images = torch.stack(images)
        # One draw per batch for each augmentation, as released.
        draw = host_reads.item('augmentation_draw', torch.rand(()))
        images = color_jitter(images, draw, self.color_jitter_strength,
                              self.color_jitter_probability, self._mean, self._std)
        if self.blur:
            sigmas = draw_blur_sigmas(images.shape[0], None, *self.blur_sigma_range)
            draw = host_reads.item('augmentation_draw', torch.rand(()))
            images = gaussian_blur(images, draw, sigmas, self.blur_probability,
                                   self.blur_kernel_ratio)
        return MixedBatch(images, torch.stack(labels), torch.stack(weights),
                          torch.stack(masks)[:, 0].to(source_inputs.device))

    def _mixed_losses(self, mixed: MixedBatch, target_samples: SampleList,
                      pseudo_weight: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Student loss on the mixed batch, weighted per pixel, logged as ``mix.*``.

        The backbone runs its label-free (inference) pass: the mixed labels are
        mostly pseudo-labels, too noisy to steer the diffusion with.
        """
        samples = []
        for sample, label in zip(target_samples, mixed.labels):
            mixed_sample = SegDataSample(metainfo=sample.metainfo)
            mixed_sample.gt_sem_seg = PixelData(data=label[None])
            samples.append(mixed_sample)
        features = self.model.stages.extract([Trajectory(mixed.images)])
        losses = self.model.decode_losses(features, samples, mixed.weights)
        losses['pseudo_weight'] = pseudo_weight.mean().detach()
        return add_prefix(losses, 'mix')

    # ------------------------------------------------------------------ helpers
    def _backward(self, losses: Dict[str, torch.Tensor],
                  optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        loss, log_vars = self.parse_losses(losses)
        optim_wrapper.backward(loss)
        return {name: value.detach() for name, value in log_vars.items()}

    @staticmethod
    def _merge_log_vars(source: Dict[str, torch.Tensor],
                        mixed: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Union of both steps' log vars; ``loss`` is their total, as in the DDP path."""
        merged = {**source, **mixed}
        merged['loss'] = source['loss'] + mixed['loss']
        return merged

    def _maybe_save_debug_images(self, iteration: int, batch: dict, target_inputs: torch.Tensor,
                                 pseudo_label: torch.Tensor, pseudo_weight: torch.Tensor,
                                 mixed: MixedBatch) -> None:
        due = self.debug_img_interval > 0 and (iteration % self.debug_img_interval == 0
                                               or iteration == self.max_iters - 1)
        if self.debug_dir is None or not due or not is_main_process():
            return
        with torch.no_grad():
            save_debug_images(self.debug_dir, iteration, {
                'source': denormalize(batch['inputs'], self._mean, self._std),
                'source label': torch.stack([s.gt_sem_seg.data[0]
                                             for s in batch['data_samples']]),
                'target': denormalize(target_inputs, self._mean, self._std),
                'pseudo-label': pseudo_label,
                'pseudo weight': pseudo_weight,
                'mixed image': denormalize(mixed.images, self._mean, self._std),
                'mixed label': mixed.labels,
                'mix mask': mixed.masks,
            })
