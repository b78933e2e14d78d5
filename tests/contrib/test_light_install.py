"""The light install: the evaluator, the engine and the CLI work without matplotlib or numpy,
and `--plot` without them says what to install."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import omniroute

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = ROOT / "examples" / "contact-center" / "workload.yaml"

# Run with matplotlib and numpy made unimportable, as in an install without the extra.
WITHOUT_PLOT = (
    "import sys\n"
    "sys.modules['matplotlib'] = None\n"
    "sys.modules['numpy'] = None\n"
    "from omniroute.contrib.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _without_plot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PLOT, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_base_dependencies_leave_out_matplotlib_and_numpy() -> None:
    requirements = importlib.metadata.requires("omniroute") or []
    base = [r for r in requirements if "extra ==" not in r]
    plot = [r for r in requirements if re.search(r"""extra\s*==\s*["']plot["']""", r)]
    names = {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower() for r in base}
    assert "matplotlib" not in names
    assert "numpy" not in names
    assert any(r.startswith("matplotlib") for r in plot)


def test_the_engine_evaluator_and_simulator_run_without_the_plot_extra() -> None:
    done = _without_plot("simulate", str(WORKLOAD), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["interactions"] > 0
    done = _without_plot("eval", "task.a == 1", "--task", '{"a": 1}')
    assert (done.returncode, done.stdout) == (0, "true\n")


def test_plot_without_matplotlib_says_what_to_install(tmp_path: Path) -> None:
    charts = tmp_path / "charts"
    done = _without_plot("simulate", str(WORKLOAD), "--plot", str(charts))
    assert done.returncode == 2
    assert "pip install 'omniroute[plot]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # it stopped before the run, not after it
    assert not charts.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", str(WORKLOAD)],
        ["sweep", str(WORKLOAD), "--vary", "seed=1,2", "--workers", "0", "--no-store"],
        ["staff", str(WORKLOAD), "--workers", "0", "--no-store"],
    ],
)
def test_report_without_matplotlib_says_what_to_install(command: list[str], tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    done = _without_plot(*command, "--report", str(report))
    assert done.returncode == 2, done.stderr
    assert "--report needs matplotlib" in done.stderr
    assert "pip install 'omniroute[plot]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # it stopped before the run, not after it
    assert not report.exists()


def test_the_version_is_the_installed_distributions() -> None:
    assert omniroute.__version__ == importlib.metadata.version("omniroute")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", omniroute.__version__)
