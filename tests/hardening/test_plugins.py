"""Issue 12, item 8: third-party plugins that are broken, impostors, or misbehave.

Real distributions are made on a temporary `sys.path` entry (a `.dist-info` folder with
entry points, and the module it names), so the registry loads them as pip would.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from omniroute.core import DeploymentError, PluginError, hookimpl, load_deployment
from omniroute.core import plugins as plugin_registry
from tests.contrib.helpers import run_cli


def _distribution(
    root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    info = root / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[omniroute]\n{lines}\n")
    for module, text in modules.items():
        (root / f"{module}.py").write_text(text)


@pytest.fixture
def third_party(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path for fake distributions; the registry reloads around the test."""
    sys.path.insert(0, str(tmp_path))
    plugin_registry._registry.cache_clear()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.startswith("evil_")]:
            del sys.modules[name]
        plugin_registry._registry.cache_clear()


def _reload() -> None:
    plugin_registry._registry.cache_clear()


def test_a_plugin_that_fails_to_import_fails_alone(
    third_party: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _distribution(
        third_party,
        "evil-import",
        {"exploding": "evil_exploding"},
        {"evil_exploding": "raise ImportError('no module named numpyy')\n"},
    )
    _reload()
    broken = plugin_registry.broken()
    assert "exploding" in broken
    assert "evil-import 1.2.3" in str(broken["exploding"])
    assert "ImportError: no module named numpyy" in str(broken["exploding"])
    # Deployments that do not use it work; one that does gets a problem naming it.
    load_deployment({"queues": {"q": {}}, "plugins": ["off_hours"]})
    with pytest.raises(DeploymentError) as caught:
        load_deployment({"queues": {"q": {}}, "plugins": ["exploding"]})
    assert "plugins[0]: plugin 'exploding' (from evil-import 1.2.3) is broken" in str(caught.value)
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0
    assert "off_hours" in out
    assert "exploding" in out
    assert "BROKEN: ImportError: no module named numpyy" in out


def test_a_third_party_plugin_cannot_take_a_builtin_name(
    third_party: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _distribution(
        third_party,
        "evil-impostor",
        {"off_hours": "evil_impostor"},
        {"evil_impostor": "X = 1\n"},
    )
    _reload()
    from omniroute.plugins import off_hours

    assert plugin_registry.get_plugin("off_hours") is off_hours
    (impostor,) = [b for b in plugin_registry.broken().values() if b.name == "off_hours"]
    assert impostor.distribution == "evil-impostor"
    assert "already taken by omniroute" in impostor.error
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0
    assert "off_hours (evil-impostor)" in out
    assert "already taken by omniroute" in out


def test_a_misspelled_hook_breaks_its_plugin_alone(third_party: Path) -> None:
    _distribution(
        third_party,
        "evil-typo",
        {"typo": "evil_typo"},
        {
            "evil_typo": (
                "from omniroute.core import hookimpl\n"
                "@hookimpl\ndef omniroute_filterz(context):\n    return []\n"
            )
        },
    )
    _reload()
    assert "typo" in plugin_registry.broken()
    assert "typo" not in plugin_registry.installed()


@attrs.frozen
class _Section:
    x: int = 0


class _Misbehaving:
    """A plugin whose hooks do what the test says."""

    def __init__(self, section: Any = _Section, validate: Any = (), filters: Any = ()) -> None:
        self.section, self.validate, self.filters = section, validate, filters

    @hookimpl
    def omniroute_config_section(self) -> Any:
        if isinstance(self.section, Exception):
            raise self.section
        return self.section

    @hookimpl
    def omniroute_validate(self, deployment: Any, section: Any) -> Any:
        if isinstance(self.validate, Exception):
            raise self.validate
        return self.validate

    @hookimpl
    def omniroute_filters(self, context: Any) -> Any:
        if isinstance(self.filters, Exception):
            raise self.filters
        return self.filters


@pytest.fixture
def misbehaving() -> Iterator[Any]:
    manager = plugin_registry.plugin_manager()

    def register(**hooks: Any) -> None:
        if manager.get_plugin("misbehaving") is not None:
            manager.unregister(name="misbehaving")
        manager.register(_Misbehaving(**hooks), name="misbehaving")

    yield register
    if manager.get_plugin("misbehaving") is not None:
        manager.unregister(name="misbehaving")


DEPLOYMENT = {"queues": {"q": {}}, "plugins": ["misbehaving"]}


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ({"section": RuntimeError("oops")}, "omniroute_config_section: RuntimeError: oops"),
        ({"section": 42}, "omniroute_config_section: TypeError: returned 42"),
        ({"validate": ValueError("bad")}, "omniroute_validate: ValueError: bad"),
        ({"validate": [1]}, "omniroute_validate: TypeError: returned 1 in its list, not a Problem"),
        ({"validate": 7}, "omniroute_validate: TypeError: returned 7"),
    ],
)
def test_config_hooks_that_misbehave_are_problems_naming_the_plugin(
    misbehaving: Any, hooks: dict[str, Any], message: str
) -> None:
    misbehaving(**hooks)
    with pytest.raises(DeploymentError) as caught:
        load_deployment(DEPLOYMENT)
    assert f"plugin 'misbehaving' failed during {message}" in str(caught.value)


def _generator_that_raises() -> Iterator[Any]:
    raise KeyError("halfway")
    yield


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (ValueError("no"), "ValueError: no"),
        (5, "returned 5; expected a list of Filter"),
        ([1], "returned 1 in its list, not a Filter"),
        (_generator_that_raises(), "KeyError: 'halfway'"),
    ],
)
def test_component_hooks_that_misbehave_are_plugin_errors(
    misbehaving: Any, filters: Any, message: str
) -> None:
    from omniroute.core import Engine

    misbehaving(filters=filters)
    deployment = load_deployment(DEPLOYMENT)
    with pytest.raises(
        PluginError, match="plugin 'misbehaving' failed during omniroute_filters"
    ) as caught:
        Engine(deployment)
    assert message in str(caught.value)
    assert caught.value.plugin == "misbehaving"
