"""Running the console script in-process, as the CLI tests do."""

from __future__ import annotations

import pytest

from omniroute.contrib.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The exit code, standard output and standard error of `omniroute ARGS`."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
