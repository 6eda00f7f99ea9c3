"""Keeping a module's frozen weights out of its state dict (they are reloaded from model_id).

Loading a state dict without them is then not an error, also under a prefix (the module
nested in a segmentor): the prefix is remembered at load time.
"""
from typing import Dict

from torch import nn


def keep_out_of_state_dict(module: nn.Module) -> None:
    """Register the hooks: ``state_dict()`` omits the module's keys, loading does not ask for
    them."""
    module.register_state_dict_post_hook(_drop_state)
    module.register_load_state_dict_pre_hook(_remember_prefix)
    module.register_load_state_dict_post_hook(_ignore_missing)


def _drop_state(module: nn.Module, state_dict: Dict, prefix: str, metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]


def _remember_prefix(module: nn.Module, state_dict: Dict, prefix: str, *args) -> None:
    module._load_prefix = prefix


def _ignore_missing(module: nn.Module, incompatible_keys) -> None:
    prefix = getattr(module, '_load_prefix', '')
    incompatible_keys.missing_keys[:] = [
        k for k in incompatible_keys.missing_keys if not k.startswith(prefix)]
