"""Mean teacher for self-training that shares the student's frozen parts.

Design follows the EMA teacher of DAFormer/MIC (mean teacher, Tarvainen &
Valpola 2017), with one change for a frozen Stable Diffusion backbone: the
teacher stores ONLY copies of the student's trainable parameters (and of the
buffers outside fully-frozen sub-modules, e.g. BatchNorm statistics). It runs
the student's modules with its own tensors swapped in
(``torch.func.functional_call``), so the frozen UNet/VAE/text encoder, their
forward hooks and caches exist once in memory and are used by both models.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn.bricks.drop import DropPath
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.modules.dropout import _DropoutNd

# ``nn.Module`` attribute names cannot contain '.', so dotted names are stored with this separator.
_SEP = '/'


def frozen_module_prefixes(model: nn.Module) -> List[str]:
    """Names of the maximal sub-modules whose parameters are all frozen.

    A sub-module counts as frozen when it has at least one parameter and none
    requires a gradient; nested frozen modules are covered by their ancestor.
    """
    prefixes: List[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(p + '.') for p in prefixes):
            continue
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            prefixes.append(name)
    return prefixes


def _under(name: str, prefixes: Sequence[str]) -> bool:
    return any(name.startswith(p + '.') for p in prefixes)


class _Store(nn.Module):
    """A flat container of named tensors (dotted names kept via ``_SEP``)."""

    def add(self, name: str, tensor: Tensor, as_parameter: bool) -> None:
        key = name.replace('.', _SEP)
        if as_parameter:
            self.register_parameter(key, nn.Parameter(tensor, requires_grad=False))
        else:
            self.register_buffer(key, tensor)

    def items_by_name(self) -> Iterator[Tuple[str, Tensor]]:
        for key, value in list(self._parameters.items()) + list(self._buffers.items()):
            yield key.replace(_SEP, '.'), value


@contextmanager
def dropout_off(model: nn.Module) -> Iterator[None]:
    """Temporarily put Dropout and DropPath layers in eval mode (teacher predictions)."""
    switched = [m for m in model.modules() if isinstance(m, (_DropoutNd, DropPath)) and m.training]
    for module in switched:
        module.training = False
    try:
        yield
    finally:
        for module in switched:
            module.training = True


class _MethodCall(nn.Module):
    """Lets ``functional_call`` run any method of ``owner`` (not only ``forward``)."""

    def __init__(self, owner: nn.Module, method: str) -> None:
        super().__init__()
        self.owner = owner
        self.method = method

    def forward(self, *args, **kwargs):
        return getattr(self.owner, self.method)(*args, **kwargs)


class EMATeacher(nn.Module):
    """Exponential moving average of a student's trainable parameters.

    ``alpha_t = min(1 - 1 / (t + 1), alpha)``, so the teacher equals the
    student at iteration 0 and ramps up to ``alpha``. The teacher's tensors
    are ``requires_grad=False`` parameters (never optimised, never reduced by
    DDP, saved in checkpoints for an exact resume). Dropout and DropPath are
    off in teacher predictions; other layers keep the student's mode, as in
    DAFormer (BatchNorm in training mode uses the batch's statistics).

    Args:
        student (nn.Module): the segmentor being trained.
        alpha (float): the EMA momentum upper bound. Defaults to 0.99.
    """

    def __init__(self, student: nn.Module, alpha: float = 0.99) -> None:
        super().__init__()
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f'EMATeacher: alpha must be in [0, 1), got {alpha}')
        self.alpha = alpha
        frozen = frozen_module_prefixes(student)
        self.ema_params = _Store()
        self.own_buffers = _Store()
        for name, param in student.named_parameters():
            if param.requires_grad:
                self.ema_params.add(name, param.detach().clone(), as_parameter=True)
        for name, buf in student.named_buffers():
            if not _under(name, frozen):
                self.own_buffers.add(name, buf.detach().clone(), as_parameter=False)
        if not len(self.ema_params._parameters):
            raise ValueError('EMATeacher: the student has no trainable parameters')

    def momentum(self, iteration: int) -> float:
        """``alpha_t = min(1 - 1/(t+1), alpha)``."""
        return min(1.0 - 1.0 / (iteration + 1), self.alpha)

    @torch.no_grad()
    def update(self, student: nn.Module, iteration: int) -> float:
        """``teacher = a * teacher + (1 - a) * student`` for every trainable parameter.

        Returns:
            float: the momentum ``a`` used.
        """
        alpha = self.momentum(iteration)
        current = {n: p for n, p in student.named_parameters() if p.requires_grad}
        ema = dict(self.ema_params.items_by_name())
        assert current.keys() == ema.keys(), (
            'EMATeacher.update: trainable parameters of the student changed since the teacher '
            f'was built: missing {sorted(ema.keys() - current.keys())[:5]}, new '
            f'{sorted(current.keys() - ema.keys())[:5]}')
        for name, teacher_param in ema.items():
            teacher_param.mul_(alpha).add_(current[name].detach(), alpha=1.0 - alpha)
        return alpha

    def tensors(self) -> Dict[str, Tensor]:
        """The teacher's tensors under the student's names."""
        named = dict(self.ema_params.items_by_name())
        named.update(self.own_buffers.items_by_name())
        return named

    @torch.no_grad()
    def call(self, student: nn.Module, method: str, *args, **kwargs):
        """Run ``student.<method>(*args, **kwargs)`` with the teacher's weights, dropout off."""
        with dropout_off(student):
            return functional_call(_MethodCall(student, method),
                                   {f'owner.{n}': t for n, t in self.tensors().items()},
                                   args, kwargs, strict=False)

    @torch.no_grad()
    def predict_logits(self,
                       student: nn.Module,
                       inputs: Tensor,
                       batch_img_metas: List[dict],
                       generator: Optional[list] = None) -> Tensor:
        """Teacher logits (B, C, H, W) at input resolution via ``encode_decode``."""
        return self.call(student, 'encode_decode', inputs, batch_img_metas, generator=generator)

    @torch.no_grad()
    def logits_from_features(self, student: nn.Module, features,
                             size: Tuple[int, int]) -> Tensor:
        """Teacher logits (B, C, *size) from the extracted features of the target images.

        Only the trained stage of the backbone runs (with the teacher's weights): the
        features come from the frozen stage, which the teacher shares with the student (the
        segmentor's ``logits_from_features``, equal to ``encode_decode`` on the images).
        """
        return self.call(student, 'logits_from_features', features, size)


def confidence_pseudo_label(logits: Tensor,
                            threshold: float,
                            ignore_top: int = 0,
                            ignore_bottom: int = 0) -> Tuple[Tensor, Tensor]:
    """Pseudo-labels and their confidence weight from teacher logits.

    As released (DACS): label = argmax of the softmax; weight = the fraction of
    ALL pixels of the batch whose max probability is at least ``threshold``,
    one scalar broadcast to every pixel. Rows at the top/bottom can then be
    zeroed (regions where rectification artefacts make pseudo-labels unreliable).

    Args:
        logits (Tensor): (B, C, H, W) teacher logits.
        threshold (float): confidence threshold (0.968 in the release).
        ignore_top (int): rows at the top whose weight is set to 0.
        ignore_bottom (int): rows at the bottom whose weight is set to 0.

    Returns:
        tuple[Tensor, Tensor]: label (B, H, W) int64 and weight (B, H, W) float32.
    """
    probs = torch.softmax(logits.detach().float(), dim=1)
    max_prob, label = probs.max(dim=1)
    confident = (max_prob >= threshold).float().mean()
    weight = confident * torch.ones_like(max_prob)
    if ignore_top > 0:
        weight[:, :ignore_top, :] = 0
    if ignore_bottom > 0:
        weight[:, -ignore_bottom:, :] = 0
    return label, weight
