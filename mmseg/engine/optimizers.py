"""An optimiser-wrapper constructor for models with a large frozen part.

DIFF freezes Stable Diffusion (about 1.3 G parameters) and trains only the
aggregator, the finecoder and the decode head. mmengine's default constructor
warns once per frozen parameter and, without ``paramwise_cfg``, hands every
parameter to the optimiser. This constructor puts only parameters with
``requires_grad=True`` into groups and merges parameters that share the same
options, so the optimiser state and the logs stay small.
"""
import logging
from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper

from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

# paramwise_cfg keys this constructor understands; anything else is an error
# rather than an option silently ignored.
_SUPPORTED_PARAMWISE_KEYS = frozenset({'custom_keys'})
_SUPPORTED_CUSTOM_OPTIONS = frozenset({'lr_mult', 'decay_mult'})


def match_custom_key(name: str, custom_keys: Dict[str, dict]) -> Optional[str]:
    """Return the custom key that applies to parameter ``name``, or None.

    The rule is mmcv's and mmengine's: substring match, the longest key first,
    ties broken alphabetically.

    Args:
        name (str): Full parameter name, e.g. ``decode_head.conv_seg.weight``.
        custom_keys (dict): Mapping of key -> options.

    Returns:
        str | None: The matching key.
    """
    for key in sorted(sorted(custom_keys), key=len, reverse=True):
        if key in name:
            return key
    return None


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor:
    """Build an optimiser wrapper over the trainable parameters only.

    Args:
        optim_wrapper_cfg (dict): ``optim_wrapper`` config: ``optimizer``
            (with ``lr`` and optionally ``weight_decay``), optional ``type``
            (default ``OptimWrapper``), ``clip_grad``, ...
        paramwise_cfg (dict, optional): ``dict(custom_keys={key: dict(
            lr_mult=..., decay_mult=...)})``. Defaults to None.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if 'optimizer' not in optim_wrapper_cfg:
            raise ValueError('optim_wrapper needs an `optimizer` entry, e.g. '
                             "dict(type='AdamW', lr=6e-05)")
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)
        self.optimizer_cfg = dict(self.optim_wrapper_cfg.pop('optimizer'))
        self.paramwise_cfg = dict(paramwise_cfg or {})
        unknown = set(self.paramwise_cfg) - _SUPPORTED_PARAMWISE_KEYS
        if unknown:
            raise ValueError(f'paramwise_cfg: unsupported keys {sorted(unknown)}; '
                             f'expected only {sorted(_SUPPORTED_PARAMWISE_KEYS)}')
        self.custom_keys: Dict[str, dict] = dict(self.paramwise_cfg.get('custom_keys', {}))
        for key, options in self.custom_keys.items():
            bad = set(options) - _SUPPORTED_CUSTOM_OPTIONS
            if bad:
                raise ValueError(f'paramwise_cfg.custom_keys[{key!r}]: unsupported options '
                                 f'{sorted(bad)}; expected {sorted(_SUPPORTED_CUSTOM_OPTIONS)}')
        if 'lr' not in self.optimizer_cfg:
            raise ValueError('optim_wrapper.optimizer needs `lr`')
        self.base_lr = self.optimizer_cfg['lr']
        self.base_wd = self.optimizer_cfg.get('weight_decay')

    def param_groups(self, model: nn.Module) -> List[dict]:
        """Group the trainable parameters of ``model`` by their options.

        Returns:
            list[dict]: Optimiser parameter groups; each has ``params`` and
            ``lr`` (and ``weight_decay`` when the optimiser has one), plus
            ``custom_key`` naming the matched key ('' for none).
        """
        groups: Dict[Tuple, dict] = {}
        n_frozen = 0
        for name, param in model.named_parameters():
            if not param.requires_grad:
                n_frozen += param.numel()
                continue
            key = match_custom_key(name, self.custom_keys) or ''
            options = self.custom_keys.get(key, {})
            group = dict(lr=self.base_lr * options.get('lr_mult', 1.0), custom_key=key)
            if self.base_wd is not None:
                group['weight_decay'] = self.base_wd * options.get('decay_mult', 1.0)
            signature = tuple(sorted(group.items()))
            groups.setdefault(signature, dict(group, params=[]))['params'].append(param)
        if not groups:
            raise ValueError('the model has no parameter with requires_grad=True: '
                             'nothing to optimise')
        for group in groups.values():
            print_log(f'optimiser group {group["custom_key"] or "(default)"}: '
                      f'{sum(p.numel() for p in group["params"]):,} params, lr {group["lr"]:g}',
                      logger='current', level=logging.INFO)
        print_log(f'{n_frozen:,} frozen parameters are in no optimiser group',
                  logger='current', level=logging.INFO)
        return list(groups.values())

    def __call__(self, model: nn.Module) -> OptimWrapper:
        # DDP and other wrappers keep the real model in `.module`.
        model = getattr(model, 'module', model)
        optimizer_cfg = dict(self.optimizer_cfg, params=self.param_groups(model))
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = dict(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
