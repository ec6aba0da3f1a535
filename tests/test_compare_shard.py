"""Sharding compare's cells over launched ranks, and stopping cleanly when a launcher says so (fast parts).

The 2-process runs themselves are slow tests: tests/test_compare_ranks.py (same results as one process)
and tests/reliability/test_rank_faults.py (a rank killed).
"""

from __future__ import annotations

import os
import signal

import pytest

import grokplug
from grokplug.cli import main
from grokplug.compare._shard import Shard, single_process_env
from grokplug.errors import UsageError
from grokplug.hooks import hookimpl


def test_each_rank_takes_every_world_th_cell(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    shard = Shard.from_env()
    assert (shard.rank, shard.world, shard.sharded, shard.is_main) == (1, 3, True, False)
    assert shard.mine(list("abcdefg")) == ["b", "e"]
    assert Shard(0, 3).mine(list("abcdefg")) == ["a", "d", "g"] and Shard(2, 3).mine(list("abcdefg")) == ["c", "f"]


def test_no_launcher_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert Shard.from_env() == Shard(0, 1) and not Shard.from_env().sharded


@pytest.mark.parametrize(("rank", "world"), [("2", "2"), ("-1", "2"), ("x", "2"), ("0", "0")])
def test_launcher_variables_that_describe_no_process_are_refused(monkeypatch, rank, world):
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", world)
    with pytest.raises(UsageError, match="RANK"):
        Shard.from_env()


def test_a_cell_runs_as_a_single_process_and_the_launch_is_restored(monkeypatch):
    from accelerate import PartialState

    launch = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29599"}
    for name, value in launch.items():
        monkeypatch.setenv(name, value)
    before = dict(PartialState._shared_state)
    with single_process_env():
        assert not any(name in os.environ for name in launch)
        state = PartialState(cpu=True)  # would join a 2-process group if it saw the launcher's variables
        assert state.num_processes == 1 and state.process_index == 0
    assert {name: os.environ[name] for name in launch} == launch
    assert PartialState._shared_state == before


def test_sigterm_inside_stop_cleanly_unwinds_and_the_handler_is_restored():
    previous = signal.getsignal(signal.SIGTERM)
    unwound = []
    with pytest.raises(grokplug.Terminated) as info:
        with grokplug.stop_cleanly():
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread at once
            finally:
                unwound.append(True)
    assert info.value.signum == signal.SIGTERM and unwound == [True]
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_collective_that_lost_its_peer_is_one_line_and_other_errors_pass():
    gloo = ("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:14531: "
            "Connection reset by peer. This is typically caused by a remote worker crashing.")
    with pytest.raises(grokplug.PeerLost) as info:
        with grokplug.stop_cleanly():
            raise RuntimeError(gloo)
    assert str(info.value) == ("another rank of the launch stopped, so this one stops too "
                               "(Read error [127.0.0.1]:14531: Connection reset by peer)")
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with grokplug.stop_cleanly():
            raise RuntimeError("shape mismatch")


class _TermAtStep:
    """Sends this process SIGTERM at the 3rd unlearning step: inside a plugin hook, as a launcher would."""

    @hookimpl
    def grokplug_on_unlearn_step(self, context, step, metrics):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)


class _TermBeforeUnlearn:
    """The same in a hook whose answers pluggy gathers itself (the other dispatch path)."""

    @hookimpl
    def grokplug_before_unlearn(self, context):
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("plugin", [_TermAtStep, _TermBeforeUnlearn])
def test_cli_stopped_by_sigterm_says_so_on_one_line_and_publishes_nothing(plugin, modular_run_dir, tmp_path, capsys):
    grokplug.get_plugin_manager().register(plugin(), name="term-in-a-hook")
    out = tmp_path / "unlearned"
    code = main(["unlearn", str(modular_run_dir), "--method", "ga", "--start", "grok", "--out", str(out),
                 "--target", "none"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 143
    assert err == ["grokplug: stopped by SIGTERM (under a launcher: another rank failed or the job was cancelled); "
                   "nothing unfinished was published, and a rerun reuses what was"]  # not blamed on the plugin
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no temporary directory left either


@pytest.fixture
def gloo_group(tmp_path):
    """A real one-process gloo group (what ``accelerate launch`` sets up, with a world of 1)."""
    import torch.distributed as dist

    def start() -> None:
        store = tmp_path / f"store-{len(list(tmp_path.iterdir()))}"
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)

    yield start
    if dist.is_initialized():
        dist.destroy_process_group()


def test_leaving_stop_cleanly_ends_the_process_group(gloo_group):
    # A gloo group left to interpreter exit aborts the process now and then ("terminate called without an
    # active exception"); leaving the block normally or by an ordinary error destroys it first.
    import torch.distributed as dist

    gloo_group()
    with grokplug.stop_cleanly():
        dist.broadcast_object_list([{"step": 1}], src=0)
    assert not dist.is_initialized()
    gloo_group()
    with pytest.raises(ValueError, match="bad recipe"):
        with grokplug.stop_cleanly():
            raise ValueError("bad recipe")
    assert not dist.is_initialized()
    gloo_group()
    with pytest.raises(grokplug.GrokplugError):
        with grokplug.stop_cleanly():
            raise grokplug.GrokplugError("one line")
    assert not dist.is_initialized()


def test_after_sigterm_or_a_lost_peer_the_group_is_left_alone(gloo_group):
    # tearing down a group whose peer is gone can block for the backend's timeout: the launcher kills us anyway
    import torch.distributed as dist

    gloo_group()
    with pytest.raises(grokplug.Terminated):
        with grokplug.stop_cleanly():
            os.kill(os.getpid(), signal.SIGTERM)
    assert dist.is_initialized()
    with pytest.raises(grokplug.PeerLost):
        with grokplug.stop_cleanly():
            raise RuntimeError("Connection reset by peer")
    assert dist.is_initialized()
    grokplug.end_process_group()
    assert not dist.is_initialized()
    grokplug.end_process_group()  # none left: nothing to do
