"""Training over processes: `torchrun --nproc-per-node N -m gruforecast train ...`.

torchrun starts N copies of the command with RANK, WORLD_SIZE and the rendezvous in the
environment (`--nnodes` and its rendezvous flags spread them over machines). Every rank
reads the data and resolves the same configuration from it. `train.fit` then spreads an
ensemble of at least N members over the ranks (member k on rank k mod N, every window,
the members' weights shared at each epoch's end: no gradient crosses processes), or, for
a smaller ensemble, gives each rank its share of every epoch's windows (one order drawn
from the shared seed, dealt out rank by rank): each rank steps on its own batches and the
weights are averaged over the ranks every `--average-every` steps and at each epoch's end
(torch's PeriodicModelAverager); `--average-every 1` averages the gradients at every step
with DistributedDataParallel instead (gloo on the CPU, NCCL on CUDA). The early-stopping
decision is rank 0's, sent to all, so every rank stops at the same epoch. Only rank 0 writes the model, the forecast
and the reports; the others write nothing and print nothing. A rank that fails ends with
its one line, and torchrun stops the rest; a collective that waits on a dead peer gives
up after `TIMEOUT` instead of hanging.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch

TIMEOUT = timedelta(minutes=10)  # a collective waiting longer on a peer fails


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes: rank 0, or any process not under torchrun (a RANK
    left in the environment by something else does not silence a single process)."""
    return world_size() < 2 or rank() == 0


def active() -> bool:
    return world_size() > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


@contextmanager
def group(device: torch.device) -> Iterator[None]:
    """Inside: the process group torchrun set up (nothing in a single process). Leaving it
    destroys the group: without that, gloo's worker threads can abort a rank (SIGABRT) as
    its interpreter shuts down, and torchrun reports a run that succeeded as failed
    (seen once in `make test`; pytorch/pytorch#179291)."""
    if world_size() < 2 or torch.distributed.is_initialized():
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend, timeout=TIMEOUT)
    try:
        yield
    finally:
        # A DistributedDataParallel module left in a reference cycle keeps its reducer and
        # the group's gloo threads alive past the group, and its rank could abort at exit
        # ("terminate called without an active exception": 3 of 24 runs under load), so
        # collect first (0 of 24).
        gc.collect()
        torch.distributed.destroy_process_group()


def mean(value: float, device: torch.device) -> float:
    """The mean of `value` over the ranks."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return float(t.item()) / world_size()


def from_main(value: float, device: torch.device) -> float:
    """Rank 0's `value`, on every rank: one decision for all."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.broadcast(t, src=0)
    return float(t.item())


def share_members(members: list[torch.nn.Module], source: int | None = None) -> None:
    """Every member's weights on every rank, from `source` or from the rank that trains it
    (member k: rank k mod N), one broadcast per member: an ensemble spread over ranks
    (`train.fit`) scores, early-stops and is written whole."""
    if not active():
        return
    n = world_size()
    for k, member in enumerate(members):
        params = list(member.parameters())
        flat = torch.cat([p.detach().reshape(-1) for p in params])  # on the members' device
        torch.distributed.broadcast(flat, src=k % n if source is None else source)
        with torch.no_grad():
            for p, v in zip(params, flat.split([p.numel() for p in params])):
                p.copy_(v.view_as(p))


def averager(every: int):
    """torch's periodic model averager: the weights averaged over the ranks every `every`
    optimizer steps (post-local SGD, Lin et al. 2020); between, each rank steps alone."""
    from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

    return PeriodicModelAverager(period=every)


def average(module: torch.nn.Module) -> None:
    """`module`'s weights averaged over the ranks now (one all-reduce of them flattened)."""
    if active():
        from torch.distributed.algorithms.model_averaging.utils import average_parameters

        average_parameters(module.parameters(), None)


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`module` under DistributedDataParallel when training over processes."""
    if not active():
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # the buffers are constants (the quantile head's signs), alike on every rank: no sync each step
    return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
