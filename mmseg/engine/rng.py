"""Capture and restore the global random states (torch, CUDA, numpy, random) as plain data.

DIFF's training features are stochastic (VAE sample, DDIM noise) and drawn
from the global generators, so an exact resume needs their states: mmengine
re-seeds on resume but does not restore them. The states are stored as
tensors, lists and numbers so the checkpoint stays loadable with
``weights_only=True``.
"""
import contextlib
import random
from typing import Any, Dict, Iterator

import numpy as np
import torch


def capture_rng_state() -> Dict[str, Any]:
    """The current global random states as plain types and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = dict(torch=torch.get_rng_state(),
                 numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                            has_gauss=int(has_gauss), cached_gaussian=float(cached)),
                 python=dict(version=version, internal=list(internal), gauss_next=gauss_next))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set the global random states from :func:`capture_rng_state`'s output."""
    torch.set_rng_state(state['torch'])
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), n['pos'],
                         n['has_gauss'], n['cached_gaussian']))
    p = state['python']
    random.setstate((p['version'], tuple(p['internal']), p['gauss_next']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Run a block (e.g. validation) without changing the global random states."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)
