"""Validation and test loops over several domains in one run.

mmengine's ValLoop and TestLoop take one dataloader and one evaluator
(docs/pitfalls.md #14). The paper trains once on GTA and evaluates on
Cityscapes, ACDC, Dark Zurich, BDD100K and Mapillary; these loops run one
evaluation per domain, prefix every metric with the domain name
(``acdc/mIoU``) and print one combined table.

Config::

    val_dataloader = cityscapes_val_loader      # the first (main) domain
    val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
    val_cfg = dict(type='MultiValLoop', domain='cityscapes',
                   extra_domains=dict(acdc=acdc_val_loader, dark_zurich=...))

Each extra domain gets a copy of the main evaluator config unless
``extra_evaluators`` names one for it.
"""
import copy
import logging
import math
from typing import Dict, List, Mapping, Optional, Sequence, Union

from mmengine.dist import is_main_process
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from torch.utils.data import DataLoader
from tqdm import tqdm

from mmseg.registry import LOOPS
from mmseg.utils import CLASSES

from .preemption import StopSignals, TrainingPreempted
from .rng import preserved_rng_state, restore_rng_state

# Rows of the combined table after the per-class IoUs.
_SUMMARY_KEYS = ('mIoU', 'mAcc', 'aAcc')


def format_domain_table(metrics: Mapping[str, float], domains: Sequence[str],
                        classes: Sequence[str] = CLASSES) -> str:
    """One table: a row per class (IoU) plus mIoU/mAcc/aAcc, a column per domain.

    Args:
        metrics: Keys ``<domain>/<metric>`` (``acdc/IoU.road``, ``acdc/mIoU``),
            values in percent.
        domains: Column order.
        classes: Row order of the per-class IoUs.

    Returns:
        str: The table, one line per row.
    """
    rows = [(f'IoU {c}', f'IoU.{c}') for c in classes] + [(k, k) for k in _SUMMARY_KEYS]
    rows = [(label, key) for label, key in rows if any(f'{d}/{key}' in metrics for d in domains)]
    width = max([len(label) for label, _ in rows] + [6])
    cols = [max(len(d), 7) for d in domains]
    lines = [' | '.join([' ' * width] + [d.rjust(w) for d, w in zip(domains, cols)])]
    lines.append('-+-'.join(['-' * width] + ['-' * w for w in cols]))
    for label, key in rows:
        cells = []
        for domain, w in zip(domains, cols):
            value = metrics.get(f'{domain}/{key}')
            text = 'n/a' if value is None or (isinstance(value, float) and math.isnan(value)) \
                else f'{float(value):.2f}'
            cells.append(text.rjust(w))
        lines.append(' | '.join([label.ljust(width)] + cells))
    return '\n'.join(lines)


def table_columns(metrics: Mapping[str, float], domains: Sequence[str]) -> List[str]:
    """Each domain followed by its subsets found in ``metrics`` (``acdc``, ``acdc/fog``, ...).

    A subset is what an evaluator reports as ``<subset>/mIoU`` (ACDC's conditions),
    prefixed here as ``<domain>/<subset>/mIoU``.
    """
    columns = []
    for domain in domains:
        columns.append(domain)
        head, tail = f'{domain}/', '/mIoU'
        for key in metrics:
            middle = key[len(head):-len(tail)] if key.startswith(head) and key.endswith(tail) \
                else ''
            if middle and '/' not in middle:
                columns.append(f'{domain}/{middle}')
    return columns


class _MultiDomainMixin:
    """Shared logic: build one (dataloader, evaluator) pair per domain and run each.

    Put before mmengine's ValLoop / TestLoop; ``STAGE`` ('val' or 'test') names the hooks,
    the loss buffer to clear and the default main domain.
    """

    STAGE = ''

    def __init__(self, runner, dataloader: Union[DataLoader, dict],
                 evaluator: Union[Evaluator, dict, list], domain: Optional[str] = None,
                 extra_domains: Optional[Mapping[str, dict]] = None,
                 extra_evaluators: Optional[Mapping[str, dict]] = None,
                 fp16: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        self._setup_domains(self.STAGE if domain is None else domain, extra_domains,
                            extra_evaluators, evaluator)

    def run(self) -> dict:
        """Evaluate every domain in turn."""
        getattr(self, f'{self.STAGE}_loss').clear()  # ValLoop.val_loss / TestLoop.test_loss
        return self._run_domains(self.STAGE)

    def _setup_domains(self, domain: str, extra_domains: Optional[Mapping[str, dict]],
                       extra_evaluators: Optional[Mapping[str, dict]],
                       evaluator_cfg: Union[dict, list, Evaluator]) -> None:
        # `extra_domains.<name>=None` (e.g. from --cfg-options) drops that domain
        dropped = {k for k, v in (extra_domains or {}).items() if v is None}
        extra_domains = {k: v for k, v in (extra_domains or {}).items() if k not in dropped}
        extra_evaluators = {k: v for k, v in (extra_evaluators or {}).items()
                            if k not in dropped}
        unknown = set(extra_evaluators) - set(extra_domains)
        if unknown:
            raise ValueError(f'extra_evaluators names domains without a dataloader: '
                             f'{sorted(unknown)}')
        if domain in extra_domains:
            raise ValueError(f'domain {domain!r} is both the main and an extra domain')
        self.domains: List[str] = [domain] + list(extra_domains)
        self.dataloaders: Dict[str, DataLoader] = {domain: self.dataloader}
        self.evaluators: Dict[str, Evaluator] = {domain: self.evaluator}
        for name, loader_cfg in extra_domains.items():
            loader = loader_cfg if isinstance(loader_cfg, DataLoader) else \
                self.runner.build_dataloader(copy.deepcopy(loader_cfg), seed=self.runner.seed)
            ev_cfg = extra_evaluators.get(name, evaluator_cfg)
            if isinstance(ev_cfg, Evaluator):
                raise TypeError(f'domain {name!r}: pass an evaluator config, not an instance')
            evaluator = self.runner.build_evaluator(copy.deepcopy(ev_cfg))
            if hasattr(loader.dataset, 'metainfo'):
                evaluator.dataset_meta = loader.dataset.metainfo
            self.dataloaders[name] = loader
            self.evaluators[name] = evaluator
        self.main_domain = domain
        self.current_domain = domain
        self.last_metrics: Dict[str, float] = {}

    def _run_domains(self, stage: str) -> dict:
        """Run every domain; return the merged, prefixed metrics.

        The global random states are restored afterwards, so validating does
        not change the training run that follows (nor an exact resume).
        """
        with preserved_rng_state():
            return self._run_domains_inner(stage)

    def _run_domains_inner(self, stage: str) -> dict:
        self.runner.call_hook(f'before_{stage}')
        self.runner.call_hook(f'before_{stage}_epoch')
        self.runner.model.eval()
        metrics: Dict[str, float] = {}
        for name in self.domains:
            self.current_domain = name
            self.dataloader, self.evaluator = self.dataloaders[name], self.evaluators[name]
            bar = tqdm(self.dataloader, desc=f'{stage} {name}', leave=False,
                       disable=not is_main_process())
            for idx, data_batch in enumerate(bar):
                self.run_iter(idx, data_batch)
            result = self.evaluator.evaluate(len(self.dataloader.dataset))
            metrics.update({f'{name}/{key}': value for key, value in result.items()})
        self.current_domain = self.main_domain
        self.dataloader = self.dataloaders[self.main_domain]
        self.evaluator = self.evaluators[self.main_domain]
        if metrics:
            print_log(f'{stage} results per domain (%):\n'
                      + format_domain_table(metrics, table_columns(metrics, self.domains)),
                      logger='current', level=logging.INFO)
        else:  # unlabelled splits (test-server submissions)
            print_log(f'{stage}: no metrics (no labels in {", ".join(self.domains)})',
                      logger='current', level=logging.INFO)
        self.last_metrics = dict(metrics)
        self.runner.call_hook(f'after_{stage}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{stage}')
        return metrics


@LOOPS.register_module()
class MultiValLoop(_MultiDomainMixin, ValLoop):
    """Validate on several domains; metrics named ``<domain>/<metric>``.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The main domain's dataloader
            (the runner's ``val_dataloader``).
        evaluator (Evaluator | dict | list): The main domain's evaluator
            (the runner's ``val_evaluator``); its config is reused for the
            other domains.
        domain (str, optional): Name of the main domain. Defaults to 'val'.
        extra_domains (dict, optional): name -> dataloader config (None: left out).
        extra_evaluators (dict, optional): name -> evaluator config.
        fp16 (bool): Autocast during validation. Defaults to False.
    """

    STAGE = 'val'


@LOOPS.register_module()
class MultiTestLoop(_MultiDomainMixin, TestLoop):
    """The test-time twin of :class:`MultiValLoop` (same arguments; domain defaults to 'test')."""

    STAGE = 'test'


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's IterBasedTrainLoop that also resumes the global random states.

    After a resume the loop first advances the dataloader past the batches
    already trained on (as mmengine does), and only then restores the random
    states saved in the checkpoint: on the CPU with deterministic settings,
    2 iterations + resume + 2 iterations equal 4 iterations exactly, even
    with stochastic features and augmentations drawn in the main process.
    """

    def run(self):
        """Train until ``max_iters`` (same hooks and validation points as mmengine)."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            print_log(f'Advance dataloader {self._iter} steps to skip data that has already '
                      'been trained', logger='current', level=logging.INFO)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        state = getattr(self.runner, 'pending_rng_state', None)
        if state is not None:
            restore_rng_state(state)
            self.runner.pending_rng_state = None
        with StopSignals() as signals:
            while self._iter < self._max_iters and not self.stop_training:
                self.runner.model.train()
                self.run_iter(next(self.dataloader_iterator))
                self._stop_if_signalled(signals)
                self._decide_current_val_interval()
                if (self.runner.val_loop is not None and self._iter >= self.val_begin
                        and (self._iter % self.val_interval == 0
                             or self._iter == self._max_iters)):
                    self.runner.val_loop.run()
                    self._stop_if_signalled(signals)
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def _stop_if_signalled(self, signals: StopSignals) -> None:
        """After SIGTERM/SIGUSR1 (on any process): save the iteration reached and stop."""
        name = signals.received_on_any_rank()
        if name is None:
            return
        from .guards import SafeCheckpointHook
        hooks = [h for h in self.runner.hooks if isinstance(h, SafeCheckpointHook)]
        path = hooks[0].save_now(self.runner, self._iter) if hooks else None
        raise TrainingPreempted(name, self._iter, self._max_iters, path)
