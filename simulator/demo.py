"""What ``make demo`` tells a newcomer about the live night it leaves running.

The demo plays a night in the background against a gateway on a known port (``telecare
simulate run --state-dir``, which describes that gateway in ``gateway.json``). These hints are
read from that gateway's API at the moment they are printed, so they name the carers who are on
shift *now* in its scheme time, never a rota guess, and say how to sign in as each kind of user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from api_models.credentials import load_dev_credentials
from simulator import api_session

# Carers whose handsets the live night plays: a person signing in as one of them would share
# the handset with the simulator, so the hints offer someone else for the carer page.
PLAYED_ROLES = frozenset({"waking_night", "day", "sleep_in"})


@dataclass(frozen=True)
class LiveNight:
    url: str
    credentials: str
    control_user: str
    auth_store: str
    speed: float
    scheme_now: datetime
    carers: list[dict[str, Any]]
    alarms: list[dict[str, Any]]


def read_live(gateway_json: Path) -> LiveNight:
    """Ask the live night's gateway (described in ``gateway_json``) what is true now."""
    g = json.loads(gateway_json.read_text())
    url = str(g["url"])
    creds = load_dev_credentials(Path(g["credentials"]))
    account = creds.account("control_room") if creds else None
    headers = api_session.api_headers(url, Path(g["credentials"]))
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        clock = http.get("/api/v1/clock").json()
        carers = http.get("/api/v1/carers").json()
        alarms = http.get("/api/v1/alarms").json()
    return LiveNight(
        url=url,
        credentials=str(g["credentials"]),
        control_user=account.username if account else "<control-room account>",
        auth_store=str(g["auth_store"]),
        speed=float(g.get("speed") or clock.get("speed") or 1.0),
        scheme_now=datetime.fromisoformat(str(clock["now"])),
        carers=list(carers),
        alarms=list(alarms),
    )


def hint_lines(live: LiveNight, tz: ZoneInfo, scheme_id: str) -> list[str]:
    """The hints, as lines of text: who is on shift now, what is open, how to sign in."""
    on_shift = [c for c in live.carers if c.get("on_shift")]
    played = [c for c in on_shift if PLAYED_ROLES & set(c["on_shift"])]
    others = [c for c in on_shift if c not in played]
    local = live.scheme_now.astimezone(tz)
    with_carer = sum(1 for a in live.alarms if _held(a))
    lines = [
        f"The live night: {scheme_id} at x{live.speed:g}, scheme time now"
        f" {local:%H:%M} ({local:%a %d %b}); the gateway is {live.url}",
        f"  open alarms now: {len(live.alarms)} ({with_carer} with a carer on them)",
    ]
    if played:
        lines.append("  on shift now (their handsets are played by the simulator):")
        lines += [f"    {_who(c)}" for c in played]
    if others:
        lines.append("  also on shift, not played (sign in as one of them to try the carer page):")
        lines += [f"    {_who(c)}" for c in others]
    if not on_shift:
        lines.append("  nobody is on shift at this moment in the scheme's rota")
    lines += [
        "How to sign in:",
        "  control room (TUI):  .venv/bin/python -m dashboard_tui"
        f" --url {live.url} --credentials {live.credentials}",
        f"  control room (API):  account {live.control_user}, its password is in"
        f" {live.credentials};",
        f"                       POST {live.url}/api/v1/session, then send"
        " Authorization: Bearer <token>",
    ]
    pick = (others or played or on_shift or [{"carer_id": "<carer id>"}])[0]["carer_id"]
    lines += [
        f"  carer page:          TELECARE_AUTH__STORE={live.auth_store}"
        f" .venv/bin/telecare carers issue-tokens --carer {pick}",
        f"                       then open {live.url}/carer and sign in as {scheme_id} /"
        f" {pick} with that token",
    ]
    return lines


def _held(alarm: dict[str, Any]) -> bool:
    """Has a carer accepted this alarm (on the way or on site)?"""
    return bool(alarm.get("accepted_by")) or alarm.get("state") in {"accepted", "arrived"}


def _who(c: dict[str, Any]) -> str:
    name = c.get("display_name") or ""
    roles = ", ".join(str(r).replace("_", " ") for r in c.get("on_shift", ()))
    state = "signed in" if c.get("logged_in") else "not signed in"
    busy = ", busy with an alarm" if c.get("busy_with") else ""
    return f"{c['carer_id']} {name} ({roles}; {state}{busy})"
