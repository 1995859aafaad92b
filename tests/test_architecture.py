"""Dependency direction: clients and the protocol never import the gateway, and nothing
outside the TUI imports Textual. Each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

PROBE = """
import importlib, pkgutil, sys
pkg = importlib.import_module({pkg!r})
for m in pkgutil.walk_packages(pkg.__path__, {pkg!r} + "."):
    importlib.import_module(m.name)
bad = sorted(n for n in sys.modules if n.split(".")[0] in {forbidden!r})
print(",".join(bad))
"""


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("devices", {"gateway", "simulator", "dashboard_tui", "textual", "fastapi", "psycopg"}),
        ("responders", {"gateway", "simulator", "dashboard_tui", "textual", "psycopg"}),
        ("simulator", {"gateway", "dashboard_tui", "textual"}),
        ("dashboard_tui", {"gateway", "simulator"}),
        ("api_models", {"gateway", "simulator", "dashboard_tui", "textual", "fastapi", "psycopg"}),
        ("gateway.engine.core", {"asyncio", "aiomqtt", "psycopg", "fastapi", "textual"}),
    ],
)
def test_imports_point_one_way(package: str, forbidden: set[str]) -> None:
    code = PROBE.format(pkg=package, forbidden=forbidden)
    if "." in package:  # a single module, not a package
        code = f"import sys, {package}\nprint(','.join(sorted(n for n in sys.modules"
        code += f" if n.split('.')[0] in {forbidden!r})))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{package} pulls in {out.stdout.strip()}"
