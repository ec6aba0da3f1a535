"""The plugin manager: built-ins, registration, env controls, and one-line errors naming the plugin."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

import grokplug
from grokplug import hookimpl
from grokplug.errors import DuplicateRegistrationError, GrokplugWarning, PluginError, UsageError
from grokplug.plugins import DEFAULT_PLUGINS, get_plugin_manager, reset_plugin_manager


def test_builtins_are_ordinary_plugins(pm):
    names = {name for name, _ in pm.list_name_plugin()}
    assert set(DEFAULT_PLUGINS) <= names
    info = pm.describe()
    assert set(info) >= {"plugins", "methods", "metrics", "presets"}
    assert {p["name"] for p in info["plugins"] if p["builtin"]} == set(DEFAULT_PLUGINS)
    assert all(p["distribution"] == "grokplug" for p in info["plugins"] if p["builtin"])
    assert {"modular", "digits", "modular-transformer"} <= {p["name"] for p in info["presets"]}


def test_loading_is_lazy_and_happens_once(pm):
    assert pm.load() is pm
    assert get_plugin_manager() is pm
    count = len(pm.list_name_plugin())
    pm.load()
    assert len(pm.list_name_plugin()) == count


def test_public_api_exports():
    for name in grokplug.__all__:
        assert getattr(grokplug, name) is not None, name
    assert grokplug.hookimpl is hookimpl


def test_hook_grokplug_register_methods(pm, sample_methods):
    pm.register(sample_methods, name="sample")
    assert "sample-noop" in pm.methods and "noop" in pm.methods
    entry = pm.methods.entry("noop")
    assert entry.plugin == "sample" and entry.name == "sample-noop"
    assert pm.describe()["methods"][0]["domain"] == "vision"


def test_unknown_method_is_usage_error_listing_known(pm, sample_methods):
    pm.register(sample_methods, name="sample")
    with pytest.raises(UsageError, match="unknown method 'nope'; known methods: .*sample-noop"):
        pm.methods.get("nope")


def test_duplicate_names_name_both_plugins(pm, sample_methods):
    class Other:
        @hookimpl
        def grokplug_register_methods(self, register):
            register("noop", object())  # clashes with sample's alias

    pm.register(sample_methods, name="sample")
    pm.register(Other(), name="other-plugin")
    with pytest.raises(DuplicateRegistrationError) as info:
        _ = pm.methods
    assert "'sample'" in str(info.value) and "'other-plugin'" in str(info.value)


def test_hook_grokplug_register_metrics(pm):
    class Metrics:
        @hookimpl
        def grokplug_register_metrics(self, register):
            register("always-one", lambda **_: 1.0)

    pm.register(Metrics(), name="metrics-plugin")
    assert pm.metrics.get("always-one")() == 1.0


def test_hook_grokplug_register_presets(pm):
    assert pm.presets.get("modular").name == "modular"


def test_plugin_raising_names_plugin_hook_and_distribution(pm):
    class Broken:
        @hookimpl
        def grokplug_register_presets(self, register):
            raise RuntimeError("boom\nsecond line")

    pm.register(Broken(), name="broken-plugin")
    with pytest.raises(PluginError) as info:
        _ = pm.presets
    message = str(info.value)
    assert "'broken-plugin'" in message and "grokplug_register_presets" in message and "boom second line" in message
    assert "\n" not in message
    assert info.value.plugin == "broken-plugin"


def test_raising_hook_call_is_attributed(pm):
    class Broken:
        @hookimpl
        def grokplug_on_phase_change(self, change):
            raise ValueError("bad phase handler")

    pm.register(Broken(), name="phase-plugin")
    with pytest.raises(PluginError, match="'phase-plugin'.*grokplug_on_phase_change.*bad phase handler") as info:
        pm.phase_changed(grokplug.PhaseChange(step=1, previous="fitting", current="memorized"))
    assert info.value.hook == "grokplug_on_phase_change"


def test_disabled_plugins_env(monkeypatch):
    monkeypatch.setenv("GROKPLUG_DISABLED_PLUGINS", "grokplug.hooks.grokfast, grokplug.hooks.builtin_presets")
    monkeypatch.setenv("GROKPLUG_GROKFAST", "1")  # enabled, but blocked: blocking wins
    pm = get_plugin_manager()
    names = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    assert "grokplug.hooks.grokfast" not in names and "grokplug.hooks.builtin_presets" not in names
    assert pm.presets.names() == ["tofu-rule", "tofu-tiny"]  # the LLM presets come with their domain plugin, grokplug.hooks.llm


def test_trace_env_prints_hook_calls(monkeypatch, capsys):
    monkeypatch.setenv("GROKPLUG_TRACE_PLUGINS", "1")
    pm = get_plugin_manager()
    pm.phase_changed(grokplug.PhaseChange(step=3, previous="fitting", current="memorized"))
    err = capsys.readouterr().err
    assert "[grokplug trace] grokplug_on_phase_change(change)" in err


def _fake_distribution(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A real installed-distribution layout (dist-info + modules) on a sys.path entry."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    eps = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[grokplug]\n{eps}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


def test_entry_point_that_fails_to_import_is_skipped_with_one_line(tmp_path, monkeypatch):
    _fake_distribution(
        tmp_path,
        "grokplug-broken",
        {"broken": "grokplug_broken_mod", "good": "grokplug_good_mod"},
        {
            "grokplug_broken_mod": "import a_module_that_does_not_exist\n",
            "grokplug_good_mod": """
                from grokplug import hookimpl
                @hookimpl
                def grokplug_register_methods(register):
                    register("good-method", object())
            """,
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("GROKPLUG_DISABLE_PLUGIN_AUTOLOAD", "0")
    reset_plugin_manager()
    with pytest.warns(GrokplugWarning, match=r"plugin 'broken' \(distribution grokplug-broken 0.1\) failed to load"):
        pm = get_plugin_manager()
    assert "good-method" in pm.methods
    assert pm.failed == [
        {"name": "broken", "distribution": "grokplug-broken", "error": "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'"}
    ]
    assert pm.distribution_of("good") == ("grokplug-broken", "0.1")


def test_entry_point_with_unknown_hook_is_refused(tmp_path, monkeypatch):
    _fake_distribution(
        tmp_path,
        "grokplug-typo",
        {"typo": "grokplug_typo_mod"},
        {"grokplug_typo_mod": "from grokplug import hookimpl\n@hookimpl\ndef grokplug_register_method(register):\n    pass\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("GROKPLUG_DISABLE_PLUGIN_AUTOLOAD", "0")
    reset_plugin_manager()
    with pytest.warns(GrokplugWarning, match="unknown hook 'grokplug_register_method'"):
        pm = get_plugin_manager()
    assert pm.get_plugin("typo") is None


def test_autoload_disabled_skips_entry_points(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "grokplug-skipme", {"skipme": "grokplug_skip_mod"}, {"grokplug_skip_mod": "x = 1\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = get_plugin_manager()  # the fixture set GROKPLUG_DISABLE_PLUGIN_AUTOLOAD=1
    assert pm.get_plugin("skipme") is None


def test_plugins_json_cli(capsys):
    from grokplug.cli import main

    assert main(["plugins", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) >= {"plugins", "methods", "metrics", "presets"}
    assert {"name", "distribution", "version", "hooks", "builtin"} <= set(info["plugins"][0])


def test_plugins_text_cli(capsys):
    from grokplug.cli import main

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "grokplug.hooks.local_rundir" in out and "modular" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "no-such-preset", "--run-dir", "x"], "unknown preset 'no-such-preset'"),
        (["frobnicate"], "invalid choice"),
        (["train", "modular"], "--run-dir"),
        (["compare", "runs/x"], "no grokplug run directory at runs/x"),
        (["unlearn", "runs/x", "--method", "ga", "--forget-rate", "1.5"], "strictly between 0 and 1"),
    ],
)
def test_cli_misuse_is_one_line_exit_2(argv, needle, capsys, tmp_path, monkeypatch):
    from grokplug.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grokplug: error:") and needle in err
    assert "\n" not in err and "Traceback" not in err


def test_cli_runs_as_console_script():
    import subprocess

    out = subprocess.run(
        [str(Path(sys.executable).with_name("grokplug")), "plugins", "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["presets"]
