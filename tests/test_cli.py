"""The telecare command as an operator uses it."""

from __future__ import annotations

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
