"""`--help` teaches: every command has help, and the command list gives each one a one-line summary."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from freqindex.cli import app

COMMANDS = sorted(info.name for info in app.registered_commands)


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_command_list_gives_every_command_one_line():
    rows = {}
    for line in _help().splitlines():
        cells = line.strip("│ ").split(maxsplit=1)
        if cells and cells[0] in COMMANDS:
            rows[cells[0]] = cells[1].rstrip("│ ") if len(cells) > 1 else ""
    assert sorted(rows) == COMMANDS
    for name, summary in rows.items():
        full = " ".join(_help(name).split())
        # the summary is the start of the command's own help, and one sentence of it
        assert summary and " ".join(summary.split()) in full, name
        assert summary[-1] in ".?!", (name, summary)
        assert "\n" not in summary and len(summary) < 400


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_its_options(command):
    text = _help(command)
    assert f"freqindex {command}" in text and "--help" in text
