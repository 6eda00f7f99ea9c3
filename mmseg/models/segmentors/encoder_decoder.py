"""Encoder-decoder segmentor with DIFF's IPKL training objective.

Training (docs/method.md §2.1, ``train_cfg.ipkl.enabled``): the backbone runs
twice per source batch, once steered by the label map and once without (the
inference path); the shared decode head gets a cross-entropy loss on both, and
``consistency_loss`` = weight * MSE between their raw stride-4 logits, neither
side detached. All of it happens inside ``loss()`` so that mmengine's DDP
wrapper (which never calls a model's ``train_step``) backpropagates it in one go.
The backbone is used through its two stages (``stages``: extract the frozen
part of several trajectories, decode each): DIFF extracts both passes with one
UNet call per inversion step; a one-pass backbone (MiT) runs two calls.

Inference: whole image or sliding window, the input padded to
``test_cfg.size_divisor`` for the backbone and the logits cropped back, then
resized to each image's ``ori_shape``. With ``test_cfg.seed`` set, each image's
randomness comes from its own generator seeded by its path, so an evaluation
is repeatable and independent of the batch (docs/differences.md §1).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList
from mmseg.utils import add_prefix
from ..backbones.shared_extraction import SharedExtractionBackbone, Trajectory, two_stages
from ..decode_heads.decode_head import stack_batch_gt
from ..utils import pad_right_bottom, padded_size, resize
from .base import BaseSegmentor, check_label_prompt_classes, checked_cfg

_TRAIN_KEYS = ('ipkl', )
_IPKL_KEYS = ('enabled', 'consistency_weight')
_TEST_KEYS = ('mode', 'crop_size', 'stride', 'size_divisor', 'seed', 'window_batch')

Generators = Optional[List[torch.Generator]]


@MODELS.register_module()
class EncoderDecoder(BaseSegmentor):
    """Backbone + decode head.

    Args:
        backbone (dict): backbone config; the backbone follows the project's
            protocol ``forward(inputs, label_map=None, generator=None)``.
        decode_head (dict): decode head config.
        data_preprocessor (dict, optional): e.g. ``SegDataPreProcessor``.
        train_cfg (dict, optional): ``dict(ipkl=dict(enabled=bool,
            consistency_weight=float))``. Without ``ipkl`` (or disabled) the
            loss is a single pass logged as ``decode.*``.
        test_cfg (dict, optional): ``mode`` ('whole' | 'slide'), ``crop_size``
            and ``stride`` (H, W) for 'slide', ``size_divisor`` (pad the
            backbone input to multiples of it), ``seed`` (None: unseeded),
            ``window_batch`` (sliding windows per backbone call, default 1;
            the result does not depend on it).
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 data_preprocessor: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        if isinstance(data_preprocessor, dict):
            # Build from the project's registry: mmengine's root one only finds
            # 'SegDataPreProcessor' when the default scope is 'mmseg'.
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(decode_head)
        self.num_classes = self.decode_head.num_classes
        check_label_prompt_classes(self.backbone, self.num_classes)
        self.train_cfg = checked_cfg(train_cfg, 'EncoderDecoder train_cfg', _TRAIN_KEYS)
        self.ipkl_cfg = checked_cfg(self.train_cfg.get('ipkl'), 'EncoderDecoder train_cfg.ipkl',
                                    _IPKL_KEYS)
        if self.ipkl_cfg.get('enabled', False) and 'consistency_weight' not in self.ipkl_cfg:
            raise ValueError('EncoderDecoder train_cfg.ipkl: enabled IPKL needs '
                             'consistency_weight (1.0 as released)')
        self.test_cfg = self._checked_test_cfg(test_cfg)
        self._check_channels()

    @property
    def align_corners(self) -> bool:
        return self.decode_head.align_corners

    @property
    def with_ipkl(self) -> bool:
        """Whether ``loss`` runs the two-pass IPKL objective."""
        return bool(self.ipkl_cfg.get('enabled', False))

    @staticmethod
    def _checked_test_cfg(test_cfg: OptConfigType) -> dict:
        cfg = checked_cfg(test_cfg, 'EncoderDecoder test_cfg', _TEST_KEYS)
        cfg.setdefault('mode', 'whole')
        if cfg['mode'] not in ('whole', 'slide'):
            raise ValueError(f"EncoderDecoder test_cfg.mode must be 'whole' or 'slide', "
                             f"got {cfg['mode']!r}")
        if cfg['mode'] == 'slide' and ('crop_size' not in cfg or 'stride' not in cfg):
            raise ValueError('EncoderDecoder test_cfg: slide mode needs crop_size and stride '
                             '(each (H, W))')
        window_batch = cfg.setdefault('window_batch', 1)
        if isinstance(window_batch, bool) or not isinstance(window_batch, int) or window_batch < 1:
            raise ValueError(f'EncoderDecoder test_cfg.window_batch must be a positive integer '
                             f'(windows per backbone call), got {window_batch!r}')
        return cfg

    def _check_channels(self) -> None:
        out_channels = getattr(self.backbone, 'out_channels', None)
        if out_channels is None:
            return
        index, got = self.decode_head.in_index, self.decode_head.in_channels
        if isinstance(index, int):
            expected = out_channels[index]
        else:
            expected = [out_channels[i] for i in index]
            if self.decode_head.input_transform == 'resize_concat':
                expected = sum(expected)
        if (list(got) if isinstance(got, (list, tuple)) else got) != expected:
            raise ValueError(f'EncoderDecoder: decode_head.in_channels={got} does not match the '
                             f'backbone out_channels {tuple(out_channels)} at in_index={index} '
                             f'(expected {expected})')

    # ----------------------------------------------------------------- features
    @property
    def stages(self) -> SharedExtractionBackbone:
        """The backbone as a frozen extraction shared by several trajectories and a trained
        decoding (DIFF itself; any other backbone in its one-pass form)."""
        return two_stages(self.backbone)

    def extract_feat(self, inputs: torch.Tensor, label_map: Optional[torch.Tensor] = None,
                     generator: Generators = None) -> Tuple[torch.Tensor, ...]:
        """Backbone feature maps, fine to coarse.

        Args:
            inputs (Tensor): (B, 3, H, W) RGB in [-1, 1].
            label_map (Tensor, optional): (B, 1, H, W) int64 train ids (255 ignore)
                steering the backbone (IPKL's with-label pass).
            generator (list[torch.Generator], optional): one per image.
        """
        stages = self.stages
        return stages.decode(stages.extract([Trajectory(inputs, label_map, generator)])[0])

    def pad_for_backbone(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` padded (value 0, right and bottom) to ``test_cfg.size_divisor``."""
        pad_h, pad_w = padded_size(*inputs.shape[2:], None, self.test_cfg.get('size_divisor'))
        return pad_right_bottom(inputs, pad_h, pad_w, 0)

    def logits_from_features(self, features, size: Tuple[int, int]) -> torch.Tensor:
        """Label-free logits of an input of ``size`` whose padded version
        (:meth:`pad_for_backbone`) was extracted as ``features`` (see :attr:`stages`).

        Returns:
            Tensor: (B, num_classes, *size) logits, cropped from the padded size.
        """
        height, width = size
        pad_h, pad_w = padded_size(height, width, None, self.test_cfg.get('size_divisor'))
        logits = self.decode_head(self.stages.decode(features))
        logits = resize(logits, (pad_h, pad_w), 'bilinear', self.align_corners)
        return logits[:, :, :height, :width]

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: Optional[List[dict]] = None,
                      generator: Generators = None) -> torch.Tensor:
        """Label-free logits at the input size (the inference path; also the DACS teacher's).

        The input is padded (value 0) to ``test_cfg.size_divisor`` for the
        backbone, and the logits are cropped back.

        Args:
            inputs (Tensor): (B, 3, H, W) RGB in [-1, 1].
            batch_img_metas (list[dict], optional): kept for the mmseg API; unused.
            generator (list[torch.Generator], optional): one per image.

        Returns:
            Tensor: (B, num_classes, H, W) logits.
        """
        trajectory = Trajectory(self.pad_for_backbone(inputs), generator=generator)
        features = self.stages.extract([trajectory])[0]
        return self.logits_from_features(features, tuple(inputs.shape[2:]))

    def _forward(self, inputs: torch.Tensor, data_samples: OptSampleList = None) -> torch.Tensor:
        """Raw (B, num_classes, H/4, W/4) logits of the label-free path."""
        return self.decode_head(self.extract_feat(inputs))

    # --------------------------------------------------------------------- loss
    def loss(self, inputs: torch.Tensor, data_samples: SampleList,
             seg_weight: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Training losses: ``decode.*``, or with IPKL ``decode_w_seg.*``,
        ``decode_wo_seg.*`` and ``consistency_loss``.

        Args:
            inputs (Tensor): (B, 3, H, W) RGB in [-1, 1].
            data_samples (list[SegDataSample]): with ``gt_sem_seg`` (1, H, W).
            seg_weight (Tensor, optional): (B, H, W) per-pixel loss weights.
        """
        trajectories = self.training_trajectories(inputs, data_samples)
        return self.decode_losses(self.stages.extract(trajectories), data_samples, seg_weight)

    def training_trajectories(self, inputs: torch.Tensor,
                              data_samples: SampleList) -> List[Trajectory]:
        """The backbone trajectories of the training loss.

        With IPKL, as released: the label-steered one, then the label-free (inference) one;
        without it, the label-free one only.
        """
        if not self.with_ipkl:
            return [Trajectory(inputs)]
        label_map = stack_batch_gt(data_samples)
        return [Trajectory(inputs, label_map), Trajectory(inputs)]

    def decode_losses(self, features: Sequence, data_samples: SampleList,
                      seg_weight: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Losses from the extracted features of the training trajectories (:attr:`stages`).

        One trajectory: ``decode.*``. The two of IPKL (label-steered, label-free):
        ``decode_w_seg.*``, ``decode_wo_seg.*`` and ``consistency_loss`` = weight * MSE
        between their raw stride-4 logits, neither side detached (docs/method.md §2.1).
        """
        maps = [self.stages.decode(f) for f in features]
        logits = [self.decode_head(m) for m in maps]
        prefixes = ('decode_w_seg', 'decode_wo_seg') if len(logits) == 2 else ('decode', )
        if len(logits) != len(prefixes):
            raise ValueError(f'EncoderDecoder.decode_losses: expected the features of 1 or 2 '
                             f'trajectories (IPKL), got {len(logits)}')
        losses = {}
        for prefix, each in zip(prefixes, logits):
            losses.update(add_prefix(
                self.decode_head.loss_by_feat(each, data_samples, seg_weight), prefix))
        if len(logits) == 2:
            losses['consistency_loss'] = (self.ipkl_cfg['consistency_weight']
                                          * F.mse_loss(logits[0], logits[1]))
        return losses

    # ---------------------------------------------------------------- inference
    def predict(self, inputs: torch.Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Predictions at each image's ``ori_shape`` (``seg_logits`` and ``pred_sem_seg``).

        A batch gives the predictions of its images evaluated one at a time: each image has
        its own seeded noise, and images of different sizes (padded to a common size by the
        data preprocessor) are evaluated in groups of equal size without that padding, so
        the backbone never sees another image's padding.
        """
        batch_img_metas = self.batch_img_metas(inputs, data_samples)
        generator = self._generators(batch_img_metas, self.test_cfg.get('seed'))
        groups = _size_groups(batch_img_metas, inputs.shape[2:])
        if len(groups) == 1 and groups[0][1] == (0, 0, *inputs.shape[2:]):
            seg_logits = self.inference(inputs, batch_img_metas, generator)
        else:
            seg_logits = inputs.new_zeros((inputs.shape[0], self.num_classes,
                                           *inputs.shape[2:]))
            for indices, (top, left, height, width) in groups:
                crop = inputs[indices, :, top:top + height, left:left + width]
                seg_logits[indices, :, top:top + height, left:left + width] = self.inference(
                    crop, [batch_img_metas[i] for i in indices],
                    None if generator is None else [generator[i] for i in indices])
        return self.postprocess_result(seg_logits, data_samples)

    def inference(self, inputs: torch.Tensor, batch_img_metas: List[dict],
                  generator: Generators = None) -> torch.Tensor:
        """(B, num_classes, H, W) logits at the batch input size, by ``test_cfg.mode``."""
        if self.test_cfg['mode'] == 'slide':
            return self.slide_inference(inputs, batch_img_metas, generator)
        return self.whole_inference(inputs, batch_img_metas, generator)

    def whole_inference(self, inputs: torch.Tensor, batch_img_metas: List[dict],
                        generator: Generators = None) -> torch.Tensor:
        """One pass over the whole (padded) image."""
        return self.encode_decode(inputs, batch_img_metas, generator)

    def slide_inference(self, inputs: torch.Tensor, batch_img_metas: List[dict],
                        generator: Generators = None) -> torch.Tensor:
        """Overlapping ``crop_size`` windows every ``stride`` pixels, logits averaged.

        The last window of a row or column is shifted back to end at the image
        border; a count matrix averages overlapping windows. ``test_cfg.window_batch``
        windows (of every image in the batch) go through the network together; each
        window of each image draws its noise from its own generator, seeded from the
        image's generator before any window runs, so the logits do not depend on
        ``window_batch``.
        """
        crop_h, crop_w = self.test_cfg['crop_size']
        stride_h, stride_w = self.test_cfg['stride']
        batch, _, height, width = inputs.shape
        windows = _windows(height, width, crop_h, crop_w, stride_h, stride_w)
        window_generators = _window_generators(generator, len(windows))
        logits = inputs.new_zeros((batch, self.num_classes, height, width))
        count = inputs.new_zeros((1, 1, height, width))
        per_call = self.test_cfg.get('window_batch', 1)
        for start in range(0, len(windows), per_call):
            chunk = windows[start:start + per_call]
            crops = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in chunk])
            chunk_generators = None if window_generators is None else [
                g for w in range(start, start + len(chunk)) for g in window_generators[w]]
            chunk_logits = self.encode_decode(crops, batch_img_metas * len(chunk),
                                              chunk_generators)
            for k, (y1, y2, x1, x2) in enumerate(chunk):
                logits[:, :, y1:y2, x1:x2] += chunk_logits[k * batch:(k + 1) * batch]
                count[:, :, y1:y2, x1:x2] += 1
        return logits / count


def _size_groups(batch_img_metas: List[dict], batch_shape: Sequence[int]
                 ) -> List[Tuple[List[int], Tuple[int, int, int, int]]]:
    """Images of the batch grouped by their region without batch padding.

    Returns:
        list: ``(indices, (top, left, height, width))`` per group, in batch order of first
        appearance; the region comes from each image's ``padding_size`` (left, right, top,
        bottom), i.e. what a batch of one would have held.
    """
    groups: Dict[Tuple[int, int, int, int], List[int]] = {}
    for index, meta in enumerate(batch_img_metas):
        left, right, top, bottom = meta.get('padding_size', (0, 0, 0, 0))
        region = (top, left, batch_shape[0] - top - bottom, batch_shape[1] - left - right)
        groups.setdefault(region, []).append(index)
    return [(indices, region) for region, indices in groups.items()]


def _window_generators(generator: Generators, num_windows: int
                       ) -> Optional[List[List[torch.Generator]]]:
    """``[window][image]`` generators, each seeded by a draw from the image's generator.

    All seeds are drawn before any window is evaluated (window by window for each image),
    so every window gets the same noise however many windows share a backbone call.
    """
    if generator is None:
        return None
    seeds = [torch.randint(0, 2**62, (num_windows, ), generator=g).tolist() for g in generator]
    return [[torch.Generator(device=g.device).manual_seed(s[w]) for g, s in zip(generator, seeds)]
            for w in range(num_windows)]


def _windows(height: int, width: int, crop_h: int, crop_w: int, stride_h: int,
             stride_w: int) -> List[Tuple[int, int, int, int]]:
    """(y1, y2, x1, x2) of every sliding window; together they cover the image."""
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    windows = []
    for row in range(rows):
        for col in range(cols):
            y2 = min(row * stride_h + crop_h, height)
            x2 = min(col * stride_w + crop_w, width)
            windows.append((max(y2 - crop_h, 0), y2, max(x2 - crop_w, 0), x2))
    return windows
