"""Start-up refusals: one line each on stderr, naming the setting, never quoting a value.

A refused start is read on a terminal and copied into service logs and tickets, so it must be
short and must not leak secrets. pydantic's own ``ValidationError`` text quotes the input (the
whole settings object for a model-level check, secrets included), so it is never printed as is:
only each error's location and message are.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from gateway.config import Settings

ENV_PREFIX = "TELECARE_"


class StartupError(Exception):
    """A fatal start-up problem found by the service itself; ``str()`` is one line, no secrets."""


class StartupRefused(Exception):
    """The gateway will not start; ``lines`` say why, one problem per line, no secret values."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = list(lines)


def env_name(loc: Sequence[int | str]) -> str:
    """``("http", "port")`` -> ``TELECARE_HTTP__PORT``; list indexes stay as ``[i]``."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        else:
            parts.append(str(part).upper())
    return ENV_PREFIX + "__".join(parts)


def describe(exc: ValidationError) -> list[str]:
    """One line per error: the setting and pydantic's message, never ``input``."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        msg = error["msg"].removeprefix("Value error, ")
        loc = error.get("loc", ())
        # Model-level checks (loc empty) already name their setting in the message.
        lines.append(f"{env_name(loc)}: {msg}" if loc else msg)
    return lines


def load_settings() -> Settings:
    """Read the settings from the environment, or raise :class:`StartupRefused`."""
    try:
        return Settings()
    except ValidationError as exc:
        raise StartupRefused(describe(exc)) from None
    except SettingsError as exc:
        # pydantic-settings says 'error parsing value for field "schemes" from source ...' when a
        # nested or list setting is not JSON; its cause may quote the value, so keep only the name.
        found = re.search(r'field "(\w+)"', str(exc))
        name = f"{ENV_PREFIX}{found.group(1).upper()}" if found else "a TELECARE_ setting"
        raise StartupRefused([f"{name}: not valid JSON"]) from None


def process_age(at: float) -> float | None:
    """Seconds from this process's creation to monotonic time ``at``: what starting Python and
    the imports took, for the start-up line in the log (Linux; None elsewhere)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        age_now = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return age_now - (time.monotonic() - at)
