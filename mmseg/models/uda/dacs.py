"""DACS self-training with an EMA teacher and ClassMix, for the DIFF segmentor.

Design follows DAFormer's ``DACS`` (Hoyer et al., CVPR 2022; DACS: Tranheden
et al., WACV 2021) as carried in the DIFF release (docs/method.md §2.2-2.3).
Modifications: explicit constructor arguments; the teacher shares the frozen
Stable Diffusion with the student (``EMATeacher``); the algorithm also runs
inside ``loss()`` for DDP; the ImageNet feature distance is not offered
(meaningless for DIFF, docs/differences.md §3); debug images via a hook-given folder.
"""
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.optim import OptimWrapper
from mmengine.structures import PixelData

from mmseg.models.backbones.diff import host_reads
from mmseg.models.utils.dacs_transforms import (color_jitter, denormalize, draw_blur_sigmas,
                                                gaussian_blur, get_class_masks, one_mix)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList,
                         add_prefix)
from .debug_images import save_debug_images
from .ema_teacher import EMATeacher, confidence_pseudo_label
from .uda_decorator import UDADecorator


class SharedFeatures(NamedTuple):
    """Raw backbone features of one extraction shared by the source step and the teacher.

    Attributes:
        source: One raw feature set per pass of the segmentor's ``training_passes``.
        target: The teacher's label-free pass on the (padded) target images.
    """
    source: List[dict]
    target: dict


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

    When the segmentor can split its backbone into a frozen extraction and a
    trainable decoding (``splits_backbone``: DIFF), the source passes of (2)
    and the teacher's target pass of (3) are ONE extraction sharing its UNet
    calls (34 calls per iteration for both with the exp-50 schedule); the
    student decodes the source features with gradients, the teacher decodes
    the target features with its EMA weights. The mixed pass of (5) needs the
    pseudo-labels and extracts after them. ``last_usage`` covers the
    iteration's UNet calls when the backbone reports them.

    Two entry points run these same steps in the same order:

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
        # The backbone's UNet usage of each extraction of the current iteration.
        self._usages: list = []
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
        iteration = self._update_teacher()
        target = None if self.source_only else self._target(batch)
        with optim_wrapper.optim_context(self):
            shared = self._shared_extraction(batch['inputs'], batch['data_samples'], target)
            source_losses = self._source_losses(batch['inputs'], batch['data_samples'], shared)
        # Only the target's raw features are kept: the source's go with the source graph.
        target_raw = None if shared is None else shared.target
        del shared
        log_vars = self._backward(source_losses, optim_wrapper)
        if not self.source_only:
            target_inputs, target_samples = target
            with optim_wrapper.optim_context(self):
                pseudo_label, pseudo_weight = self._pseudo_label(target_inputs, target_samples,
                                                                 target_raw)
            del target_raw
            mixed = self._mix(batch['inputs'], batch['data_samples'], target_inputs,
                              pseudo_label, pseudo_weight)
            with optim_wrapper.optim_context(self):
                mix_losses = self._mixed_losses(mixed, target_samples, pseudo_weight)
            log_vars = self._merge_log_vars(log_vars, self._backward(mix_losses, optim_wrapper))
            self._maybe_save_debug_images(iteration, batch, target_inputs, pseudo_label,
                                          pseudo_weight, mixed)
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        return log_vars

    def loss(self,
             inputs: torch.Tensor,
             data_samples: SampleList,
             target_inputs: Optional[torch.Tensor] = None,
             target_data_samples: OptSampleList = None) -> Dict[str, torch.Tensor]:
        """The whole iteration's losses for one backward (DDP path)."""
        iteration = self._update_teacher()
        batch = dict(inputs=inputs, data_samples=data_samples, target_inputs=target_inputs,
                     target_data_samples=target_data_samples)
        target = None if self.source_only else self._target(batch)
        shared = self._shared_extraction(inputs, data_samples, target)
        losses = self._source_losses(inputs, data_samples, shared)
        if not self.source_only:
            target_inputs, target_samples = target
            pseudo_label, pseudo_weight = self._pseudo_label(
                target_inputs, target_samples, None if shared is None else shared.target)
            del shared
            mixed = self._mix(inputs, data_samples, target_inputs, pseudo_label, pseudo_weight)
            losses.update(self._mixed_losses(mixed, target_samples, pseudo_weight))
            self._maybe_save_debug_images(iteration, batch, target_inputs, pseudo_label,
                                          pseudo_weight, mixed)
        return losses

    # -------------------------------------------------------------------- steps
    def _update_teacher(self) -> int:
        """EMA update of the teacher from the student; returns this iteration's index."""
        iteration = int(host_reads.item('iteration', self.local_iter))
        self._usages = []
        if self.teacher is not None:
            self.teacher.update(self.model, iteration)
        self.local_iter += 1
        return iteration

    def _shared_extraction(self, inputs: torch.Tensor, data_samples: SampleList,
                           target: Optional[Tuple[torch.Tensor, SampleList]]
                           ) -> Optional[SharedFeatures]:
        """Raw features of the source passes and the teacher's target pass, one extraction.

        None (each step extracts on its own) without a teacher or when the segmentor cannot
        split its backbone. The target pass is the teacher's ``encode_decode`` pass: label-
        free, on the target images padded to ``test_cfg.size_divisor``, global RNG.
        """
        if target is None or not getattr(self.model, 'splits_backbone', False):
            return None
        passes = self.model.training_passes(inputs, data_samples)
        passes.append(dict(inputs=self.model.padded_for_backbone(target[0])))
        raw = self.model.backbone.extract_raw(passes)
        self._record_usage()
        return SharedFeatures(source=raw[:-1], target=raw[-1])

    def _source_losses(self, inputs: torch.Tensor, data_samples: SampleList,
                       shared: Optional[SharedFeatures] = None) -> Dict[str, torch.Tensor]:
        """Supervised source loss of the student (IPKL if the segmentor enables it)."""
        if shared is None:
            losses = self.model.loss(inputs, data_samples)
            self._record_usage()
            return losses
        feats = [tuple(self.model.backbone.decode_raw(raw)) for raw in shared.source]
        return self.model.losses_from_feats(feats, data_samples)[0]

    @staticmethod
    def _target(batch: dict) -> Tuple[torch.Tensor, SampleList]:
        if batch.get('target_inputs') is None:
            raise ValueError('DACS: the batch has no target_inputs; train on a UDADataset '
                             '(source + target items) or set source_only=True')
        samples = batch.get('target_data_samples')
        if samples is None:
            samples = [SegDataSample() for _ in range(batch['target_inputs'].shape[0])]
        return batch['target_inputs'], samples

    def _pseudo_label(self, target_inputs: torch.Tensor, target_samples: SampleList,
                      target_raw: Optional[dict] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher argmax labels (B, H, W) and the confidence weight (B, H, W).

        ``target_raw``: the raw backbone features of the target from the shared extraction
        (the teacher then runs only the trainable part); None: the teacher's own pass.
        """
        if target_raw is None:
            metas = [sample.metainfo for sample in target_samples]
            logits = self.teacher.predict_logits(self.model, target_inputs, metas)
            self._record_usage()
        else:
            logits = self.teacher.logits_from_raw(self.model, target_raw,
                                                  tuple(target_inputs.shape[2:]))
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
        losses, _ = self.model.decode_loss(self.model.extract_feat(mixed.images), samples,
                                           mixed.weights, 'decode')
        self._record_usage()
        losses['pseudo_weight'] = pseudo_weight.mean().detach()
        return add_prefix(losses, 'mix')

    # ------------------------------------------------------------------ helpers
    def _record_usage(self) -> None:
        """Remember the backbone's ``last_usage`` (UNet work) of the extraction just made."""
        usage = getattr(self.model.backbone, 'last_usage', None)
        if usage is not None:
            self._usages.append(usage)

    @property
    def last_usage(self):
        """UNet calls and rows per call of the latest iteration (all its extractions), as
        the backbone's ``last_usage`` type; None when the backbone does not report them."""
        usages = self._usages
        if not usages:
            return None
        return type(usages[0])(sum(u.calls for u in usages),
                               tuple(r for u in usages for r in u.rows))

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
