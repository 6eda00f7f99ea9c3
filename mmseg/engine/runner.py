"""A Runner whose checkpoints are safe to load and written atomically.

Checkpoint contents (all plain types and tensors):

- ``meta``: epoch, iter, cfg (text), seed, experiment_name, time,
  mmengine_version, dataset_meta;
- ``state_dict``: the model's trainable weights (the DIFF backbone's
  ``state_dict`` leaves out the frozen Stable Diffusion weights);
- ``message_hub``: logged scalars and runtime info (HistoryBuffers as dicts);
- ``optimizer`` and ``param_schedulers`` states;
- ``rng_state``: the global random states (torch, numpy, random), restored
  when resuming by :class:`ResumableIterBasedTrainLoop` once the dataloader has
  been advanced, so that 2 + resume + 2 iterations equal 4.

Loading uses ``torch.load(weights_only=True)``; the weights must fit the model
exactly, or loading fails listing the missing and unexpected keys.
"""
import os.path as osp
import time
from typing import Callable, Optional, Union

import mmengine
from mmengine.dist import master_only
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import weights_to_cpu

from mmseg.registry import RUNNERS
from mmseg.utils import atomic_write_text

from .checkpoint import (extract_state_dict, load_checkpoint_safe, load_state_dict_strict,
                         plain_meta, restore_message_hub_state, save_checkpoint_atomic, to_plain)
from .rng import capture_rng_state


@RUNNERS.register_module()
class SafeRunner(Runner):
    """mmengine's Runner with safe, atomic checkpoints (see module docstring)."""

    #: random states of the checkpoint being resumed, consumed by the train loop
    pending_rng_state = None

    @property
    def bare_model(self):
        """The model without its DDP (or other) wrapper."""
        return self.model.module if is_model_wrapper(self.model) else self.model

    @master_only
    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """Write ``out_dir/filename`` (same arguments as mmengine's Runner)."""
        meta = dict(meta or {})
        # The hook calls this after the iteration finished: the next one to run
        # is self.iter + 1 (mmengine's convention, kept so resume lines up).
        meta.setdefault('epoch', self.epoch + 1 if by_epoch else self.epoch)
        meta.setdefault('iter', self.iter if by_epoch else self.iter + 1)
        meta.update(cfg=self.cfg.pretty_text, seed=self.seed,
                    experiment_name=self.experiment_name,
                    time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
                    mmengine_version=mmengine.__version__)
        dataset = getattr(self.train_dataloader, 'dataset', None)
        if hasattr(dataset, 'metainfo'):
            meta.update(dataset_meta=dataset.metainfo)
        checkpoint = dict(meta=plain_meta(meta),
                          state_dict=weights_to_cpu(self.bare_model.state_dict()),
                          message_hub=to_plain(self.message_hub.state_dict(), 'message_hub'))
        if save_optimizer:
            checkpoint['optimizer'] = to_plain(self.optim_wrapper.state_dict(), 'optimizer')
        if save_param_scheduler and self.param_schedulers is not None:
            if isinstance(self.param_schedulers, dict):
                checkpoint['param_schedulers'] = {
                    name: [to_plain(s.state_dict(), 'param_schedulers') for s in group]
                    for name, group in self.param_schedulers.items()}
            else:
                checkpoint['param_schedulers'] = [
                    to_plain(s.state_dict(), 'param_schedulers') for s in self.param_schedulers]
        checkpoint['rng_state'] = capture_rng_state()
        self.call_hook('before_save_checkpoint', checkpoint=checkpoint)
        save_checkpoint_atomic(checkpoint, osp.join(out_dir, filename))

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = True,
                        revise_keys: Optional[list] = None) -> dict:
        """Load ``filename`` safely; its weights must fit the model exactly.

        ``strict`` and ``revise_keys`` are accepted for mmengine's interface;
        loading is always strict and only an anchored ``module.`` prefix is
        stripped.
        """
        checkpoint = load_checkpoint_safe(filename, map_location=map_location)
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = restore_message_hub_state(checkpoint['message_hub'])
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_state_dict_strict(self.bare_model, extract_state_dict(checkpoint),
                               prefixes=('module.', ), source=str(filename))
        self._has_loaded = True
        self._loaded_checkpoint_rng = checkpoint.get('rng_state')
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        """mmengine's resume, plus the random states for the train loop to restore."""
        super().resume(filename, resume_optimizer=resume_optimizer,
                       resume_param_scheduler=resume_param_scheduler, map_location=map_location)
        self.pending_rng_state = getattr(self, '_loaded_checkpoint_rng', None)

    @master_only
    def dump_config(self) -> None:
        """Write the resolved config into the work dir (atomically)."""
        name = osp.basename(self.cfg.filename) if self.cfg.filename else f'{self.timestamp}.py'
        if not name.endswith('.py'):
            name = osp.splitext(name)[0] + '.py'
        atomic_write_text(osp.join(self.work_dir, name), self.cfg.pretty_text)
