"""Stopping on a scheduler's signal: finish the iteration, save it, exit with a distinct code.

Cluster schedulers send SIGTERM before they preempt or cancel a job (Slurm, Kubernetes) and
can send SIGUSR1 as an advance warning (``sbatch --signal=USR1@120``). While the training loop
runs, :class:`StopSignals` turns both into a request: the loop finishes the iteration it is in,
saves a checkpoint of it through the kill-safe path and raises :class:`TrainingPreempted`;
``tools/train.py`` prints one line and exits with :data:`EXIT_PREEMPTED`. ``--resume`` then
continues bit-exactly. In a distributed run every process learns of a signal that any of them
received (one all-reduce per iteration), so all stop after the same iteration.
"""
import signal
import threading
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size

#: exit status of a training stopped by SIGTERM/SIGUSR1 after saving (EX_TEMPFAIL: retry)
EXIT_PREEMPTED = 75
#: exit status after Ctrl-C (128 + SIGINT, the shell's convention)
EXIT_INTERRUPTED = 130

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class TrainingPreempted(Exception):
    """Training stopped on a signal after saving the iteration it reached."""

    def __init__(self, signal_name: str, iteration: int, max_iters: int,
                 checkpoint: Optional[str]) -> None:
        self.signal_name, self.iteration, self.checkpoint = signal_name, iteration, checkpoint
        saved = f'saved {checkpoint}' if checkpoint else 'checkpoint saved by the main process'
        super().__init__(f'{signal_name}: stopped after iteration {iteration} of {max_iters} '
                         f'and {saved}; continue with --resume')


class StopSignals:
    """While active, SIGTERM and SIGUSR1 are recorded instead of ending the process.

    Handlers are installed only in the main thread; the previous ones are restored on exit.
    """

    def __init__(self) -> None:
        self.received: Optional[str] = None
        self._previous: dict = {}

    def _handle(self, number, frame) -> None:
        self.received = signal.Signals(number).name

    def __enter__(self) -> 'StopSignals':
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def received_on_any_rank(self) -> Optional[str]:
        """The signal's name if this or (distributed) any other process received one."""
        if get_world_size() <= 1:
            return self.received
        flag = torch.tensor([0 if self.received is None else 1], dtype=torch.int32)
        all_reduce(flag, op='max')
        if int(flag.item()) == 0:
            return None
        return self.received or 'signal on another process'
