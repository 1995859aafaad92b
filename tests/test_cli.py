"""The telecare command as an operator uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from tests.conftest import SCHEME

runner = CliRunner()


def test_scheme_load_succeeds_on_the_example() -> None:
    result = runner.invoke(app, ["scheme", "load", str(SCHEME)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "60" in result.output


def test_scheme_load_names_the_offending_line(tmp_path: Path) -> None:
    lines = SCHEME.read_text().splitlines()
    target = next(i for i, line in enumerate(lines) if line.strip() == "flat: A-001")
    lines[target] = lines[target].replace("A-001", "A-999")
    broken = tmp_path / "broken.yaml"
    broken.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["scheme", "load", str(broken)])
    assert result.exit_code == 1
    assert f"broken.yaml:{target + 1}:" in result.output.replace("\n", "")
    assert "A-999" in result.output


def test_protocol_schema_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["protocol", "schema", "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert (tmp_path / "device-event.v1.json").exists()


def test_each_subcommand_group_is_there_when_chosen() -> None:
    # Groups other than `gateway`, `scheme` and `protocol` are imported when chosen.
    expected = {
        "simulate": ["run", "list", "repeat", "hints", "stream"],
        "carers": ["issue-tokens"],
        "users": ["add", "disable"],
        "devices": ["provision"],
        "report": [],
        "db": [],
    }
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0, listing.output
    for name, commands in expected.items():
        assert name in listing.output
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        for command in commands:
            assert command in result.output, (name, command, result.output)
    unknown = runner.invoke(app, ["user"])
    assert unknown.exit_code != 0
    assert "users" in unknown.output  # the suggestion lists lazy groups too


def test_the_gateway_start_path_imports_no_other_subcommand() -> None:
    # What `telecare gateway run` imports before it can be ready (docs/performance.md,
    # "Recovery"): no other subcommand's module, and no argon2 hash made at import.
    probe = (
        "import sys, gateway.cli, gateway.service, gateway.auth.store as s\n"
        "mods = ['gateway.reports.cli', 'gateway.users_cli', 'gateway.provision_cli',"
        " 'simulator.cli', 'simulator.runner', 'rich']\n"
        "print([m for m in mods if m in sys.modules], s._dummy_hash.cache_info().currsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[] 0", out.stdout + out.stderr
