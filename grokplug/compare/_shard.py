"""Compare cells spread over the processes of ``accelerate launch`` / ``torchrun``.

The cells of a matrix are independent: rank ``r`` of ``w`` runs cells ``r, r+w, r+2w, …`` of the
matrix (the same order on every rank) and writes each one atomically into ``cells/``, the resumable
cache whose input hashes let any later run, with any number of ranks, reuse a finished cell. Each cell
runs with the launcher's variables hidden (:func:`single_process_env`), as the single process it is:
an HF ``Trainer`` inside a cell that found a process group would wrap the model in DDP and all-reduce
with another rank that is running a different cell. Only when its cells are done does a rank join a
gloo process group, once, to gather every rank's cells; rank 0 then aggregates and writes the results.

A rank that dies is noticed by the others in that gather, or by ``torchrun`` (behind ``accelerate
launch``), which stops the survivors with SIGTERM; the CLI reports either on one line
(:mod:`grokplug._signals`). Cells finished before the fault stay in the cache for the rerun.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from ..errors import UsageError

T = TypeVar("T")

#: the variables torchrun / accelerate launch set that make a library join a process group
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                      "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: how long a rank that has finished its cells waits for the slowest rank (``GROKPLUG_COMPARE_WAIT_S``);
#: under torchrun a rank that dies ends the wait at once (SIGTERM), so this bounds only other launchers
DEFAULT_WAIT_S = 6 * 3600.0


@dataclass(frozen=True)
class Shard:
    """This process's place among the launcher's processes (``rank`` of ``world``)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> Shard:
        """``RANK``/``WORLD_SIZE`` as torchrun and ``accelerate launch`` set them; one process otherwise."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
        except ValueError:
            raise UsageError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
                             "are not integers; are they set by a launcher?") from None
        if world < 1 or not 0 <= rank < world:
            raise UsageError(f"RANK={rank} / WORLD_SIZE={world} do not describe a process of the launch")
        return cls(rank=rank, world=world)

    @property
    def sharded(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owner(self, index: int) -> int:
        return index % self.world

    def mine(self, items: Sequence[T]) -> list[T]:
        return [item for i, item in enumerate(items) if self.owner(i) == self.rank]

    def label(self) -> str:
        return f"rank {self.rank} of {self.world}"


@contextmanager
def single_process_env() -> Iterator[None]:
    """Run the body as a plain single process: launcher variables hidden, accelerate's state fresh.

    Both are restored afterwards, so code after the cell sees the launch as it is.
    """
    saved = {k: os.environ.pop(k) for k in LAUNCHER_VARIABLES if k in os.environ}
    states = _accelerate_states()
    kept = [dict(state._shared_state) for state in states]
    for state in states:
        state._shared_state.clear()
    try:
        yield
    finally:
        for state, values in zip(states, kept, strict=True):
            state._shared_state.clear()
            state._shared_state.update(values)
        os.environ.update(saved)


def _accelerate_states() -> list[Any]:
    try:
        from accelerate.state import AcceleratorState, GradientState, PartialState
    except ImportError:  # accelerate is a dependency; without it there is no state to hide
        return []
    return [PartialState, AcceleratorState, GradientState]


def run_matrix(ctx: Any, specs: Sequence[Any], shard: Shard, *, show: bool) -> list[dict[str, Any]]:
    """Every cell of the matrix, in ``specs`` order: computed here or reused from the cache; sharded,
    this rank's share, then every rank's gathered."""
    from tqdm.auto import tqdm

    from ._matrix import run_cell

    mine = [i for i in range(len(specs)) if shard.owner(i) == shard.rank]
    desc = f"compare ({shard.label()})" if shard.sharded else "compare"
    done: dict[int, dict[str, Any]] = {}
    with tqdm(total=len(mine), desc=desc, unit="cell", disable=not show, position=shard.rank) as bar:
        for i in mine:
            bar.set_postfix_str(specs[i].key, refresh=False)
            with single_process_env():
                done[i] = run_cell(ctx, specs[i])
            bar.update()
    if shard.sharded:
        done = _gather(done, shard)
    missing = [specs[i].key for i in range(len(specs)) if i not in done]
    if missing:  # a rank answered without its share: a launch of mismatched commands
        raise UsageError(f"the ranks did not run the same compare matrix (cells missing: {', '.join(missing[:3])}); "
                         "launch the same command on every rank")
    return [done[i] for i in range(len(specs))]


def _gather(done: dict[int, dict[str, Any]], shard: Shard) -> dict[int, dict[str, Any]]:
    """Every rank's cells, on every rank: one gloo group, joined only once this rank's cells are done."""
    import torch.distributed as dist

    try:
        wait = float(os.environ.get("GROKPLUG_COMPARE_WAIT_S", DEFAULT_WAIT_S))
    except ValueError:
        raise UsageError(f"GROKPLUG_COMPARE_WAIT_S must be a number of seconds, got {os.environ['GROKPLUG_COMPARE_WAIT_S']!r}") from None
    dist.init_process_group("gloo", rank=shard.rank, world_size=shard.world, timeout=timedelta(seconds=wait))
    try:
        shares: list[Any] = [None] * shard.world
        dist.all_gather_object(shares, done)
    finally:
        dist.destroy_process_group()
    merged: dict[int, dict[str, Any]] = {}
    for share in shares:
        merged.update(share or {})
    return merged


def check_shardable() -> None:
    """Sharded cells must not find a process group: a Trainer inside a cell would join it (see the module doc)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        raise UsageError("compare spreads its cells over the launched processes itself, without a process group; "
                         "call it before anything sets one up (an Accelerator, PartialState, init_process_group)")
