"""Run directory, checkpoint store and retention: atomic, verified, pickle-free, bounded."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch

from grokplug import _store, _tensor_files
from grokplug._atomic import RunLock, write_json_atomic
from grokplug._retention import RetentionPolicy
from grokplug._rundir import RunDir
from grokplug.errors import (
    CheckpointIntegrityError,
    FormatVersionError,
    GrokplugWarning,
    RunDirError,
    RunLockedError,
    UnsafePathError,
)


@pytest.fixture
def run(tmp_path):
    return RunDir.create(tmp_path / "run", {"config": {"lr": 0.1}, "seed": 3})


def _tensors(value: float = 1.0):
    return {"w": torch.full((3, 2), value), "b": torch.arange(4, dtype=torch.float32)}


def test_save_and_load_round_trip(run):
    entry = _store.save_checkpoint(run, 50, _tensors(2.0), {"metrics": {"val_acc": 0.5}})
    assert entry["path"] == "checkpoints/00000050/model.safetensors"
    reread = RunDir(run.path)
    assert reread.checkpoint_steps() == [50] and reread.latest_step == 50
    loaded = _store.load_weights(reread.weights_path(50), reread.checkpoint_entry(50)["sha256"])
    assert torch.equal(loaded["w"], torch.full((3, 2), 2.0))
    meta = reread.checkpoint_meta(50)
    assert meta["sha256"] == entry["sha256"] and meta["step"] == 50 and meta["metrics"]["val_acc"] == 0.5
    assert not [p for p in (run.path / "checkpoints").iterdir() if p.name.startswith(".tmp")]


def _mixed_snapshot() -> _store.Snapshot:
    """Every shape of tensor a state dict holds: 0-dim (Adam's step), empty, bool, int, bf16, 2-d."""
    return _store.Snapshot({
        "w": torch.randn(5, 3), "step": torch.tensor(7.0), "empty": torch.zeros(0), "mask": torch.tensor([True, False]),
        "ids": torch.arange(6, dtype=torch.int64), "half": torch.randn(4).to(torch.bfloat16),
    })


def _safetensors_parts(path) -> tuple[dict, bytes]:
    """A safetensors file read by its published layout: an 8-byte little-endian header length, the JSON
    header, then the tensor bytes."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + size]), raw[8 + size :]


def test_snapshot_is_written_as_save_file_writes_it(tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    snapshot = _mixed_snapshot()
    save_file(dict(snapshot), str(tmp_path / "reference.safetensors"), metadata={"format": "pt", "step": "3"})
    monkeypatch.setattr(_tensor_files, "save_file", lambda *a, **k: pytest.fail("a Snapshot must not go through save_file"))
    _store.write_safetensors(snapshot, tmp_path / "fast.safetensors", {"format": "pt", "step": "3"})
    # the same header and the same tensor bytes (safetensors itself orders metadata keys at random, so two
    # save_file calls can differ in key order only)
    assert _safetensors_parts(tmp_path / "fast.safetensors") == _safetensors_parts(tmp_path / "reference.safetensors")
    loaded = load_file(str(tmp_path / "fast.safetensors"))
    assert all(torch.equal(loaded[k], v) and loaded[k].dtype == v.dtype for k, v in snapshot.items())


def test_without_tensorspec_a_snapshot_goes_through_save_file(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    snapshot = _mixed_snapshot()
    save_file(dict(snapshot), str(tmp_path / "reference.safetensors"))
    calls = []
    monkeypatch.setattr(_tensor_files, "_TensorSpec", None)  # safetensors < 0.8
    monkeypatch.setattr(_tensor_files, "save_file", lambda *a, **k: (calls.append(a[1]), save_file(*a, **k))[1])
    _store.write_safetensors(snapshot, tmp_path / "old.safetensors")
    assert calls == [str(tmp_path / "old.safetensors")]
    assert _safetensors_parts(tmp_path / "old.safetensors") == _safetensors_parts(tmp_path / "reference.safetensors")


def test_snapshots_are_private_contiguous_copies():
    model = torch.nn.Linear(3, 2)
    model.weight.data = model.weight.data.t().contiguous().t()  # a non-contiguous parameter
    snapshot = _store.snapshot_state_dict(model)
    assert isinstance(snapshot, _store.Snapshot) and all(t.is_contiguous() for t in snapshot.values())
    assert snapshot["weight"].data_ptr() != model.weight.data_ptr()
    model.weight.data.add_(1.0)  # training goes on: the snapshot must not change
    assert not torch.equal(snapshot["weight"], model.weight.data)


def test_a_snapshot_edited_into_a_strided_view_goes_through_save_file(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    snapshot = _store.Snapshot({"w": torch.arange(12.0).reshape(3, 4).t()})  # not a dense block any more
    monkeypatch.setattr(_tensor_files, "serialize_file", lambda *a, **k: pytest.fail("a strided tensor needs save_file"))
    with pytest.raises(ValueError, match="non contiguous"):  # save_file's own refusal, not silently wrong bytes
        _store.write_safetensors(snapshot, tmp_path / "x.safetensors")
    snapshot["w"] = snapshot["w"].contiguous()
    monkeypatch.undo()
    _store.write_safetensors(snapshot, tmp_path / "x.safetensors")
    assert torch.equal(load_file(str(tmp_path / "x.safetensors"))["w"], torch.arange(12.0).reshape(3, 4).t())


def test_disk_full_in_the_snapshot_writer_is_an_oserror(tmp_path, monkeypatch):
    import errno

    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(_tensor_files, "serialize_file", full)
    with pytest.raises(OSError) as info:
        _store.write_safetensors(_mixed_snapshot(), tmp_path / "x.safetensors")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "x.safetensors")


def test_optimizer_state_round_trip(run):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    expected_rng = torch.get_rng_state()
    _store.save_checkpoint(run, 1, _store.snapshot_state_dict(model), {}, optimizer=_store.snapshot_optimizer(opt))
    state, rng = _store.load_optimizer(run, 1)
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.01)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert rng is not None and torch.equal(rng, expected_rng)
    _store.drop_optimizer_state(run, 1)
    assert _store.load_optimizer(RunDir(run.path), 1) is None


def test_tampered_weights_fail_verification(run):
    _store.save_checkpoint(run, 10, _tensors(), {})
    path = run.weights_path(10)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError, match="does not match its manifest"):
        _store.load_weights(path, run.checkpoint_entry(10)["sha256"])


def test_truncated_weights_are_refused(run):
    _store.save_checkpoint(run, 10, _tensors(), {})
    path = run.weights_path(10)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointIntegrityError, match="does not match"):
        _store.load_weights(path, run.checkpoint_entry(10)["sha256"])
    with pytest.raises(CheckpointIntegrityError, match="not a readable safetensors file"):
        _store.load_weights(path)  # even without a hash to compare, it is not loaded


def test_pickle_weights_are_refused_without_loading(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for name in ("model.safetensors", "model.pt"):
        torch.save({"w": Evil()}, tmp_path / name)
        with pytest.raises(CheckpointIntegrityError, match="never loads weights through pickle"):
            _store.load_weights(tmp_path / name)
    assert not marker.exists()


def test_manifest_path_outside_run_is_refused(run):
    _store.save_checkpoint(run, 10, _tensors(), {})
    for bad in ("../../etc/passwd", "/etc/passwd", "checkpoints/../../x"):
        run.manifest["checkpoints"]["10"]["path"] = bad
        with pytest.raises(UnsafePathError, match="refused"):
            run.weights_path(10)


def test_future_format_version_is_refused(run):
    manifest = json.loads((run.path / "manifest.json").read_text())
    manifest["format_version"] = 99
    write_json_atomic(run.path / "manifest.json", manifest)
    with pytest.raises(FormatVersionError, match="format version 99.*upgrade grokplug"):
        RunDir(run.path)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        RunDir(tmp_path / "nope")
    with pytest.raises(RunDirError, match="not a grokplug run directory"):
        RunDir(tmp_path)


def test_malformed_history_line_is_skipped_with_warning(run):
    run.append_history({"step": 0, "train_acc": 0.1, "val_acc": 0.1})
    with open(run.path / "history.jsonl", "a") as fh:
        fh.write('{"step": 50, "train_ac')  # a crash mid-write
    with pytest.warns(GrokplugWarning, match="line 2 is malformed"):
        assert [r["step"] for r in run.history()] == [0]


def test_orphaned_checkpoint_folders_are_cleaned(run):
    _store.save_checkpoint(run, 10, _tensors(), {})
    (run.path / "checkpoints" / ".tmp-00000020-abc").mkdir()
    (run.path / "checkpoints" / "00000030").mkdir()  # renamed into place, manifest never updated
    assert sorted(_store.clean_orphans(run)) == [".tmp-00000020-abc", "00000030"]
    assert [p.name for p in (run.path / "checkpoints").iterdir()] == ["00000010"]


def test_delete_removes_manifest_entry_then_files(run):
    _store.save_checkpoint(run, 10, _tensors(), {})
    folder = run.weights_path(10).parent
    _store.delete_checkpoint(run, 10)
    assert RunDir(run.path).checkpoint_steps() == [] and not folder.exists()


def test_lock_refuses_a_second_writer(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # free again


def test_disk_full_mid_save_leaves_previous_state_intact(run, monkeypatch):
    import errno

    from grokplug.errors import GrokplugError

    _store.save_checkpoint(run, 10, _tensors(), {})
    manifest_before = (run.path / "manifest.json").read_bytes()
    real_write = _store.write_checkpoint_file

    def write_then_fail(path, data):
        real_write(path, data[: len(data) // 2])  # half the bytes hit the disk, then the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_store, "write_checkpoint_file", write_then_fail)
    with pytest.raises(GrokplugError, match="cannot save checkpoint 20 in .*: the disk is full"):
        _store.save_checkpoint(run, 20, _tensors(), {})
    assert (run.path / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == ["00000010"]


def test_retention_log_spaced_plus_protected():
    policy = RetentionPolicy(per_octave=2)
    saved = list(range(0, 20001, 50))
    keep = policy.keep(saved, protected={12350})
    assert 0 in keep and 20000 in keep and 12350 in keep
    assert len(keep) < 40
    assert policy.keep(saved[:10]) <= set(saved[:10])
    assert RetentionPolicy.dense().keep(saved) == set(saved)


def test_retention_is_stable_online():
    """Deciding after each save deletes nothing that a later decision would keep (except the latest)."""
    policy = RetentionPolicy(per_octave=2)
    alive: set[int] = set()
    for step in range(0, 5001, 50):
        alive.add(step)
        alive &= policy.keep(alive)
    assert alive == policy.keep(range(0, 5001, 50))


def test_the_entry_records_the_written_file_and_its_size(run):
    entry = _store.save_checkpoint(run, 5, _tensors(3.0), {})
    weights = run.path / entry["path"]
    assert entry["bytes"] == weights.stat().st_size
    assert entry["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()  # hashed independently here
    assert sorted(p.name for p in weights.parent.iterdir()) == ["meta.json", "model.safetensors"]
    assert (weights.parent.stat().st_mode & 0o777) == 0o700  # as tempfile.mkdtemp made the folder


def test_re_saving_a_step_replaces_the_stale_copy(run):
    _store.save_checkpoint(run, 7, _tensors(1.0), {})
    (run.path / "checkpoints" / "00000007" / "stray.txt").write_text("left by an earlier run")
    entry = _store.save_checkpoint(run, 7, _tensors(4.0), {})
    assert torch.equal(_store.load_weights(run.weights_path(7), entry["sha256"])["w"], torch.full((3, 2), 4.0))
    assert not (run.path / "checkpoints" / "00000007" / "stray.txt").exists()


def test_deleting_the_latest_checkpoint_moves_latest_step_back(run):
    for step in (10, 20, 30):
        _store.save_checkpoint(run, step, _tensors(), {})
    _store.delete_checkpoint(run, 30)
    assert run.latest_step == 20 and RunDir(run.path).latest_step == 20
    _store.delete_checkpoint(run, 10)
    assert run.latest_step == 20
    _store.delete_checkpoint(run, 20)
    assert run.latest_step is None and run.checkpoint_steps() == []


def test_a_checkpoint_another_process_wrote_is_resolved_before_deleting(run, tmp_path):
    _store.save_checkpoint(run, 10, _tensors(), {})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.safetensors").write_text("someone else's file")
    reopened = RunDir(run.path)  # this object did not write step 10: its paths are not trusted
    folder = run.path / "checkpoints" / "00000010"
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        _store.delete_checkpoint(reopened, 10)
    assert (outside / "model.safetensors").read_text() == "someone else's file"


def test_deleting_a_checkpoint_never_unlinks_a_file_of_another_one(run):
    _store.save_checkpoint(run, 10, _tensors(), {})
    _store.save_checkpoint(run, 20, _tensors(), {})
    run.manifest["checkpoints"]["10"]["meta"] = "checkpoints/00000020/meta.json"  # an edited manifest
    _store.delete_checkpoint(run, 10)
    assert (run.path / "checkpoints" / "00000020" / "meta.json").is_file()
    assert not (run.path / "checkpoints" / "00000010").exists()


def test_temp_names_are_unique_and_a_taken_name_is_skipped(tmp_path):
    from grokplug._atomic import create_temp, write_bytes_atomic

    taken: list[str] = []

    def create(path):
        if not taken:  # the first name is already taken (another process with the same pid and token)
            taken.append(path.name)
            raise FileExistsError(path)
        path.mkdir()

    made, _ = create_temp(tmp_path, ".x.", ".tmp", create)
    assert made.name != taken[0] and made.is_dir() and made.name.startswith(".x.") and made.name.endswith(".tmp")
    names = {create_temp(tmp_path, ".y.", ".tmp", lambda p: p.touch(exist_ok=False))[0].name for _ in range(50)}
    assert len(names) == 50
    write_bytes_atomic(tmp_path / "sub" / "f.json", b"{}", sync=False)  # its folder is made on first use
    assert (tmp_path / "sub" / "f.json").read_bytes() == b"{}"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.json"]  # no temp file left
