"""Hardening, part 4: property-based tests (Hypothesis) that keep the boundaries closed.

For every generated command line, and every generated damage to ``manifest.json`` / ``grok.json``:

* the exit code is 0, 1 or 2, and any other exception is a failure (no traceback, ever);
* a failure prints exactly one ``grokplug: error:`` line;
* the source run stays byte-identical (sha256 and mtime of every file);
* nothing is written outside the output directory (``--out``, ``--run-dir``, ``--plot``, or compare's
  documented default ``<run>-compare``).

Every example runs in a fresh sandbox, ``<tmp>/grokplug-fuzz-*/parent/box`` (so that ``..`` is still
the sandbox's own folder); the only thing the harness ever deletes is that temp root. The fast suite
runs a bounded number of examples; ``make test-slow`` runs the ``slow`` variants with many more.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import grokplug
from grokplug.cli import main
from grokplug.errors import GrokplugError

from reliability_support import tree_state

FAST, SLOW = 12, 150
_SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# -- strategies -----------------------------------------------------------------------------------

#: path placeholders, made real inside each example's sandbox (see _materialise)
PATHS = ["RUN", "RUN/x", "RUN/checkpoints", "RUN/checkpoints/..", "LINK/x", "LINK", "FILE", "FILE/x", "OUT",
         "OUT/sub", ".", "..", "", "nowhere/deep", "RUN/manifest.json", "RUN/grok.json"]
NUMBERS = ["0", "1", "2", "-1", "1.5", "1e-3", "nan", "inf", "-inf", "NaN", "abc", "", str(2**40), "0x10", "1e309", "٣"]
junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
number = st.one_of(st.sampled_from(NUMBERS), junk)
path = st.sampled_from(PATHS)
methods = st.sampled_from(["ga", "ft", "rl", "ssd", "no-such", "../x", "", "GA", "llm-ga"])


def _perturbed(draw: st.DrawFn, base: dict[str, str], table: dict[str, st.SearchStrategy[str]]) -> list[str]:
    """A valid command (``base``), its output drawn from PATHS, then up to two options replaced by drawn values.

    Mostly-valid inputs reach the code behind the first check, where a boundary bug would write.
    """
    options = dict(base)
    if draw(st.integers(0, 9)) < 7:
        options["--out"] = draw(path)
    for _ in range(draw(st.integers(0, 2))):
        flag = draw(st.sampled_from(sorted(table)))
        options[flag] = draw(table[flag])
    positional = options.pop("", None)
    argv = [options.pop("command")] + ([positional] if positional is not None else [])
    for flag, value in options.items():
        argv += [flag.split("#")[0], value]  # "--set#2": a second --set
    return argv + (["--json"] if draw(st.booleans()) else [])


UNLEARN_BASE = {"command": "unlearn", "": "RUN", "--method": "ga", "--start": "final", "--set": "max_steps=1"}
UNLEARN_TABLE = {
    "": st.sampled_from(["FILE", "nowhere", ".", "RUN/checkpoints", "LINK"]), "--method": methods,
    "--start": st.sampled_from(["pre", "grok", "best", "middle"]), "--fallback": st.sampled_from(["final", "xyz", "grok", "120", ""]),
    "--seed": number, "--forget-rate": number, "--target": st.one_of(number, st.just("frac:0.5")),
    "--set": st.builds(lambda v: f"max_steps={v}", number),
    "--set#2": st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["lr", "epochs", "momentum", "x", ""]), number),
    "--sweep": st.builds(",".join, st.lists(number, max_size=3)), "--forget-class": number,
}
COMPARE_BASE = {"command": "compare", "": "RUN", "--methods": "ga", "--seeds": "1", "--forget-rates": "0.5",
                "--fallback": "final", "--n-boot": "10", "--set": "ga.max_steps=1", "--targets": "frac:0.5"}
COMPARE_TABLE = {
    "": st.sampled_from(["FILE", "nowhere", ".", "LINK"]), "--methods": st.sampled_from(["ssd", "ga,no-such", "", ",", "../x"]),
    "--seeds": st.sampled_from(["0", "-1", "a", "0,0", str(2**40), "1,"]), "--n-boot": number, "--bootstrap-seed": number,
    "--forget-rates": st.sampled_from(["0", "1", "nan", "-0.2", "0.5,0.5", "x"]), "--fallback": st.sampled_from(["xyz", ""]),
    "--targets": st.sampled_from(["none", "frac:x", "0.3", "retrain"]), "--set": st.builds(lambda v: f"ga.max_steps={v}", number),
}


@st.composite
def unlearn_argv(draw: st.DrawFn) -> list[str]:
    return _perturbed(draw, UNLEARN_BASE, UNLEARN_TABLE)


@st.composite
def compare_argv(draw: st.DrawFn) -> list[str]:
    argv = _perturbed(draw, COMPARE_BASE, COMPARE_TABLE)
    return argv[:-1] if argv[-1] == "--json" else argv


@st.composite
def other_argv(draw: st.DrawFn) -> list[str]:
    kind = draw(st.sampled_from(["inspect", "train", "plugins", "junk"]))
    if kind == "inspect":
        argv = ["inspect", draw(path)]
        if draw(st.booleans()):
            argv += ["--plot", draw(st.sampled_from([*PATHS, "OUT/curves.png", "curves.png"]))]
        return argv + (["--json"] if draw(st.booleans()) else [])
    if kind == "train":
        argv = ["train", draw(st.sampled_from(["modular", "no-such", ""])), "--run-dir", draw(path), "--max-steps",
                draw(st.one_of(st.sampled_from(["20", "0", "-5", "x"]), number)), "--no-progress"]
        if draw(st.booleans()):
            argv += ["--seed", draw(number)]
        return argv + (["--overwrite"] if draw(st.booleans()) else [])
    if kind == "plugins":
        return ["plugins"] + (["--json"] if draw(st.booleans()) else [])
    return draw(st.lists(st.one_of(junk, st.sampled_from(["--out", "--set", "unlearn", "-h", "--version"])), max_size=5))


any_argv = st.one_of(unlearn_argv(), compare_argv(), other_argv())

#: the run lock and its holder note: taken (and rewritten) by every command that opens a run, never run data
LOCK_FILES = (".lock", ".lock.owner")

# -- the sandbox ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _sandbox(source: Path) -> Iterator[Path]:
    """A fresh ``<tmp>/grokplug-fuzz-*/parent/box`` holding RUN (a copy of ``source``), FILE and LINK."""
    root = Path(tempfile.mkdtemp(prefix="grokplug-fuzz-")).resolve()
    box = root / "parent" / "box"
    box.mkdir(parents=True)
    shutil.copytree(source, box / "RUN")
    (box / "FILE").write_text("precious")
    (box / "LINK").symlink_to(box / "RUN" / "checkpoints", target_is_directory=True)
    try:
        yield box
    finally:
        assert root.name.startswith("grokplug-fuzz-") and root.parent == Path(tempfile.gettempdir()).resolve()
        shutil.rmtree(root, ignore_errors=True)  # the only deletion the harness makes: its own temp root


def _materialise(argv: list[str], box: Path) -> list[str]:
    return [str(box / a) if a in PATHS and a not in (".", "..", "") else a for a in argv]


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _allowed_outputs(argv: list[str], box: Path) -> list[Path]:
    """Where this command may write: the path it was given as its output, or compare's default."""
    allowed = [box / "RUN-compare"] if argv[:1] == ["compare"] and "--out" not in argv else []
    for flag in ("--out", "--run-dir", "--plot"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            allowed.append(Path(argv[argv.index(flag) + 1]))
    return [(p if p.is_absolute() else box / p).resolve() for p in allowed]  # relative to the command's cwd


def _state_outside(root: Path, allowed: list[Path]) -> dict[str, tuple[str, int]]:
    """Every file under ``root`` (links not followed) except under the allowed outputs and ``.lock`` files."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in files:
            p = Path(folder) / name
            if name not in LOCK_FILES and not any(_within(p.resolve(), a) for a in allowed) and p.is_file():
                state[p.relative_to(root).as_posix()] = (tree_state(p.parent)[name], p.stat().st_mtime_ns)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
    return state


def _run_main(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's --help / --version
            code = exc.code if isinstance(exc.code, int) else 0
    return code, out.getvalue(), err.getvalue()


def _assert_clean_exit(argv: list[str], code: int, err: str) -> None:
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert sum(line.startswith("grokplug: error: ") for line in lines) == 1, (argv, err)
        assert all(line.startswith("grokplug: ") for line in lines), (argv, err)


def _check_cli_example(argv: list[str], box: Path) -> None:
    if argv[:1] == ["train"] and "--overwrite" in argv and _allowed_outputs(argv, box)[-1] == box / "RUN":
        argv = [a for a in argv if a != "--overwrite"]  # overwriting the source on purpose is the one allowed way
    root = box.parent.parent
    run_before = tree_state(box / "RUN", ignore=LOCK_FILES)
    allowed = _allowed_outputs(argv, box)
    outside_before = _state_outside(root, allowed)
    code, _, err = _run_main(argv, box)
    if "-h" in argv or "--help" in argv or "--version" in argv:
        assert code == 0 or "Traceback" not in err
    else:
        _assert_clean_exit(argv, code, err)
    assert tree_state(box / "RUN", ignore=LOCK_FILES) == run_before, argv
    assert _state_outside(root, allowed) == outside_before, argv


def _cli_property(max_examples: int):
    @settings(max_examples=max_examples, **_SETTINGS)
    @given(argv=any_argv)
    def check(argv: list[str], memorized_preset_run: Path) -> None:
        with _sandbox(memorized_preset_run) as box:
            _check_cli_example(_materialise(argv, box), box)

    return check


test_cli_arguments_never_escape_or_crash = _cli_property(FAST)
test_cli_arguments_never_escape_or_crash_long = pytest.mark.slow(_cli_property(SLOW))

# -- manifest.json / grok.json fields --------------------------------------------------------------

json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=False), st.text(max_size=8),
              st.sampled_from(["../outside.safetensors", "/etc/passwd", "checkpoints/../../x", "00000050", "50", "nan"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
MANIFEST_FIELDS = ["format", "format_version", "status", "checkpoints", "pins", "pins.pre", "pins.grok", "latest_step",
                   "run", "run.config", "run.seed", "checkpoints.<key>", "checkpoints.<first>.path",
                   "checkpoints.<first>.sha256", "checkpoints.<first>.meta", "checkpoints.<first>.optimizer"]
REPORT_FIELDS = ["label", "pre_step", "grok_step", "reasons", "t_mem", "grok_ratio", "params", "<whole>"]


def _set(doc, dotted: str, value, new_key: str):  # noqa: ANN001, ANN202 - any JSON
    keys = dotted.split(".")
    target = doc
    for key in keys[:-1]:
        if not isinstance(target, dict):
            return doc
        if key == "<first>":
            key = next(iter(target), None)
            if key is None:
                return doc
        target = target.setdefault(key, {})
    last = keys[-1]
    if last == "<whole>":
        return value
    if isinstance(target, dict) and last == "<key>":
        if target:
            target[new_key] = target.pop(next(iter(target)))
    elif isinstance(target, dict):
        target[last] = value
    return doc


def _check_damaged_run(run: Path, box: Path) -> None:
    root = box.parent.parent
    before = tree_state(run, ignore=LOCK_FILES)
    outside_before = _state_outside(root, [])
    for phase in ("grok", "pre", "final", "best"):
        with contextlib.suppress(GrokplugError):  # anything else is a failure
            grokplug.load_checkpoint(torch.nn.Linear(4, 3), run, phase, fallback="final" if phase == "grok" else None)
    with contextlib.suppress(GrokplugError):
        grokplug.RunDir(run).history()
        grokplug.detect_phases(run)
    for argv in (["inspect", str(run), "--json"], ["inspect", str(run)]):
        code, _, err = _run_main(argv, box)
        _assert_clean_exit(argv, code, err)
    assert tree_state(run, ignore=LOCK_FILES) == before
    assert _state_outside(root, []) == outside_before


def _damage_property(max_examples: int):
    @settings(max_examples=max_examples, **_SETTINGS)
    @given(file=st.sampled_from(["manifest.json", "grok.json"]), data=st.data())
    def check(file: str, data: st.DataObject, scripted_run: Path) -> None:
        with _sandbox(scripted_run) as box:
            run = box / "RUN"
            weights = next((run / "checkpoints").glob("*/model.safetensors"))
            (box.parent / "outside.safetensors").write_bytes(weights.read_bytes())  # a valid file a path may name
            doc = json.loads((run / file).read_text())
            for _ in range(data.draw(st.integers(1, 3))):
                field = data.draw(st.sampled_from(MANIFEST_FIELDS if file == "manifest.json" else REPORT_FIELDS))
                doc = _set(doc, field, data.draw(json_value), data.draw(st.sampled_from(["abc", "-5", "00000050", "1e3", "", "50"])))
            (run / file).write_text(json.dumps(doc))
            _check_damaged_run(run, box)

    return check


test_damaged_manifest_and_report_fields_are_one_line = _damage_property(FAST * 2)
test_damaged_manifest_and_report_fields_are_one_line_long = pytest.mark.slow(_damage_property(SLOW * 2))
