"""Data-parallel helpers over Hugging Face Accelerate's process state.

`accelerate launch -m speechft run ...` and `torchrun -m speechft run ...` start several
processes; Accelerate's PartialState sets up torch.distributed from their environment (gloo
on CPU, NCCL on GPU). A single plain process needs none of it: every helper here is then a
no-op, so the same loop serves a laptop and a cluster.
"""

from __future__ import annotations

import os
import sys
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


RELAUNCHED_ENV = "SPEECHFT_ACCELERATE_RELAUNCHED"


def _parent_launch_args() -> list[str] | None:
    """The arguments after `launch` of the `accelerate launch` process that started us, if any."""
    try:
        argv = open(f"/proc/{os.getppid()}/cmdline", "rb").read().decode(errors="replace").split("\0")
    except OSError:  # not Linux, or the parent is gone
        return None
    for i, token in enumerate(argv[:-1]):
        # `accelerate launch ...`, `python -m accelerate.commands.accelerate_cli launch ...` or
        # `python -m accelerate.commands.launch ...`
        if (token == "launch" and i > 0 and os.path.basename(argv[i - 1]).startswith("accelerate")) or token == "accelerate.commands.launch":
            return [a for a in argv[i + 1 :] if a]
    return None


def accelerate_relaunch_command() -> list[str] | None:
    """The multi-process command to run instead of this one, or None to go on as is.

    Without a GPU or a config file, `accelerate launch --num_processes N` (N > 1) starts ONE
    plain process: Accelerate's multi-CPU path needs MPI. Its multi-process launcher
    (`--multi_gpu`, torch elastic underneath) works on CPU with the gloo backend, so speechft
    re-runs the user's own launch command through it: N processes, as asked.
    """
    if (os.environ.get(RELAUNCHED_ENV) or "WORLD_SIZE" in os.environ or "MASTER_ADDR" not in os.environ
            or "ACCELERATE_MIXED_PRECISION" not in os.environ or torch.cuda.is_available()):
        return None  # not Accelerate's single-process launcher, or already distributed
    launch_args = _parent_launch_args()
    if launch_args is None:
        return None
    from accelerate.commands.launch import launch_command_parser

    try:
        parsed = launch_command_parser().parse_args(launch_args)
    except SystemExit:  # arguments we cannot read back: stay single-process
        return None
    if (parsed.num_processes or 1) < 2 or parsed.multi_gpu or parsed.mpirun_hostfile or parsed.config_file:
        return None
    # --cpu and --multi_gpu exclude each other in Accelerate; on a GPU-less machine both mean CPU.
    launch_args = [a for a in launch_args if a != "--cpu"]
    return [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu", *launch_args]
