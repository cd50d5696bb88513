"""Data-parallel helpers over Hugging Face Accelerate's process state.

`accelerate launch -m speechft run ...` and `torchrun -m speechft run ...` start several
processes; Accelerate's PartialState sets up torch.distributed from their environment (gloo
on CPU, NCCL on GPU). A single plain process needs none of it: every helper here is then a
no-op, so the same loop serves a laptop and a cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


def _launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """In-place sum over processes (returns `t`)."""
        if self.active:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    def sum_scalar(self, x: float) -> float:
        if not self.active:
            return x
        return float(self.all_reduce_sum(torch.tensor([x], dtype=torch.float64)).item())

    def gather_objects(self, obj) -> list:
        """[obj of rank 0, obj of rank 1, ...] on every process."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """rank 0's `obj` on every process."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def shard(self, items: list) -> list:
        """This process's share: every world-th item, starting at its rank."""
        return items[self.rank :: self.world]


_STATE: Dist | None = None


def get_dist() -> Dist:
    """The process group of this run (created on first use)."""
    global _STATE
    if _STATE is None:
        if _launched():
            from accelerate import PartialState

            state = PartialState(cpu=not torch.cuda.is_available())
            _STATE = Dist(state.process_index, state.num_processes, state.device)
        else:
            _STATE = Dist(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    return _STATE
