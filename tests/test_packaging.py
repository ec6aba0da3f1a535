"""The distribution: hooks/ and adapters/ install inside the package; a real plugin distribution loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        cwd=out,
    )
    (out / "build.log").write_text(built.stdout + built.stderr)
    (found,) = out.glob("grokplug-*.whl")
    return found


def test_wheel_build_is_quiet_and_ships_every_module(wheel):
    """A newcomer reads setuptools warnings as a broken install: the build must raise none, and no module
    may be left behind (the warning setuptools gives for an unlisted folder is also what drops it)."""
    log = (wheel.parent / "build.log").read_text()
    warnings = [  # byte-compiling is off where PYTHONDONTWRITEBYTECODE is set: the environment's, not ours
        line
        for line in log.splitlines()
        if ("warning" in line.lower() or "absent from" in line) and "byte-compiling is disabled" not in line
    ]
    assert not warnings, "\n".join(warnings[:10])
    names = set(zipfile.ZipFile(wheel).namelist())
    mapping = {"grokplug": "grokplug", "hooks": "grokplug/hooks", "adapters": "grokplug/adapters"}
    sources = [
        f"{mapping[src]}/{path.relative_to(ROOT / src).as_posix()}"
        for src in mapping
        for path in (ROOT / src).rglob("*")
        if path.suffix in {".py", ".md"} and "__pycache__" not in path.parts
    ]
    assert sources and not sorted(set(sources) - names)


def test_wheel_maps_hooks_and_adapters_into_the_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/", 1)[0] for n in names}
    assert top_level == {"grokplug", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert "grokplug/hooks/specs.py" in names and "grokplug/hooks/local_rundir.py" in names
    assert "grokplug/adapters/__init__.py" in names
    assert "grokplug/py.typed" in names
    assert not any(n.startswith(("hooks/", "adapters/", "tests/", "examples/")) for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "grokplug = grokplug.cli:main" in entry_points


def test_external_plugin_distribution_is_listed(tmp_path):
    """Build and pip-install a tiny `grokplug-hello` distribution, then see it in `grokplug plugins --json`."""
    src = tmp_path / "grokplug-hello"
    (src / "grokplug_hello").mkdir(parents=True)
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "grokplug-hello"
            version = "0.3.1"

            [project.entry-points.grokplug]
            hello = "grokplug_hello"
            """
        )
    )
    (src / "grokplug_hello" / "__init__.py").write_text(
        textwrap.dedent(
            '''
            from grokplug import hookimpl


            class HelloAscent:
                """Gradient ascent, said hello."""

                domain = "vision"


            @hookimpl
            def grokplug_register_methods(register):
                register("hello-ascent", HelloAscent())
            '''
        )
    )
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(src)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site), "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "0"}
    out = subprocess.run(
        [sys.executable, "-m", "grokplug.cli", "plugins", "--json"], env=env, capture_output=True, text=True, check=True
    )
    info = json.loads(out.stdout)
    hello = next(p for p in info["plugins"] if p["name"] == "hello")
    assert hello == {
        "name": "hello", "distribution": "grokplug-hello", "version": "0.3.1", "builtin": False,
        "hooks": ["grokplug_register_methods"],
    }
    method = next(m for m in info["methods"] if m["name"] == "hello-ascent")
    assert method["plugin"] == "hello" and method["description"] == "Gradient ascent, said hello."
    disabled = subprocess.run(
        [sys.executable, "-m", "grokplug.cli", "plugins", "--json"],
        env={**env, "GROKPLUG_DISABLED_PLUGINS": "hello"}, capture_output=True, text=True, check=True,
    )
    assert "hello" not in {p["name"] for p in json.loads(disabled.stdout)["plugins"]}
