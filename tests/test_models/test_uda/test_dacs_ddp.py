"""DACS under mmengine's DDP wrapper on two CPU processes (gloo).

mmengine's ``MMDistributedDataParallel.train_step`` never calls the model's own
``train_step`` (docs/pitfalls.md #13); DACS therefore runs the whole
iteration inside ``loss()``. The DDP gradient must be the mean over ranks of
each rank's single-process ``loss()`` gradient, and both ranks must end equal.
IPKL is on so that every trainable parameter (the tiny backbone's label
embedding included) gets a gradient, as DDP without ``find_unused_parameters``
requires; otherwise its bucket is never reduced.
"""
import copy
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.model import MMDistributedDataParallel

from tests.test_models.diff_merged_helpers import assert_close_to_magnitude
from tests.test_models.test_uda.test_dacs import RecordingOptimWrapper
from tests.test_models.test_uda.uda_helpers import build_dacs, uda_batch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        model = build_dacs(ipkl=True)
        ddp = MMDistributedDataParallel(module=model, device_ids=None)
        optim = RecordingOptimWrapper(model, [])
        torch.manual_seed(7)
        log_vars = ddp.train_step(uda_batch(seed=10 + rank), optim)
        torch.save(dict(grads=optim.grads, keys=sorted(log_vars),
                        params={n: p.detach() for n, p in model.named_parameters()},
                        local_iter=int(model.local_iter)),
                   os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


def test_dacs_trains_under_ddp_with_the_mean_gradient(tmp_path):
    # fork: the workers inherit the imported modules (spawn would re-import torch and diffusers).
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method='fork')
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    assert 'mix.decode.loss_seg' in ranks[0]['keys'] and ranks[0]['local_iter'] == 1
    # Reference: each rank's loss() gradient, computed here, then averaged.
    reference = build_dacs(ipkl=True)
    grads = []
    for rank in range(2):
        model = copy.deepcopy(reference)
        torch.manual_seed(7)
        data = model.data_preprocessor(uda_batch(seed=10 + rank), True)
        total, _ = model.parse_losses(model(**data, mode='loss'))
        total.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    largest = max(float((grads[0][n] + grads[1][n]).abs().max()) / 2 for n in grads[0])
    for name, grad in ranks[0]['grads'].items():
        expected = (grads[0][name] + grads[1][name]) / 2
        # All-reduce in other processes vs (a + b) / 2 here: 1e-4 of each gradient's scale
        # (at least 1e-4 of the largest, for gradients that are zero up to rounding).
        assert_close_to_magnitude(grad, expected, name, relative=1e-4, floor=1e-4 * largest)
    for name, param in ranks[0]['params'].items():
        assert torch.equal(param, ranks[1]['params'][name]), name
