"""Device modes: test windows. While a technician tests a device, its alarms come to the
control room as test calls (on the board, never offered); a fire is always real. A window
ends by itself when it runs out, or when the control room ends it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from devices.events import EventKind, Priority
from gateway.engine import lifecycle
from gateway.engine.model import (
    AlarmState,
    DeviceModeIn,
    EventIn,
    NotifyControlRoom,
    higher,
)
from gateway.engine.triage import Triage

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx


def live_until(tx: _Tx, key: str) -> datetime | None:
    """The end of the device's live test window; an expired one ends here and now."""
    until = tx.state.device_mode.get(key)
    if until is not None and until <= tx.now:
        ended(tx, key, "expired")
        return None
    return until


def ended(tx: _Tx, key: str, how: str) -> None:
    scheme_id, _, device_id = key.partition("/")
    tx.set_mode(key, None)
    tx.cmds.append(
        NotifyControlRoom(
            scheme_id,
            Priority.P3,
            "test_window_ended",
            f"device {device_id}: test window ended ({how}); its alarms page again",
        )
    )


def on_mode(core: Core, tx: _Tx, m: DeviceModeIn) -> None:
    scheme = core.schemes.get(m.scheme)
    if scheme is None or scheme.device(m.device_id) is None:
        return
    key = f"{m.scheme}/{m.device_id}"
    modes = tx.state.device_mode
    if m.until is not None and m.until > tx.now:
        tx.set_mode(key, m.until)
        tx.cmds.append(
            NotifyControlRoom(
                m.scheme,
                Priority.P3,
                "test_window_started",
                f"device {m.device_id}: test window until {m.until.isoformat()}; its alarms"
                " come to the control room as test calls (a fire is always real)",
            )
        )
    elif key in modes:
        ended(tx, key, "ended by the control room")


def record_test_call(
    core: Core,
    tx: _Tx,
    e: EventIn,
    kind: EventKind,
    t: Triage,
    ref: str | None,
    flat_id: str | None,
    until: datetime,
) -> None:
    """An alarm-kind event from a device in a test window: on the board, never offered.

    Repeats from the same device join its test call (one line on the board, every event
    recorded), so a technician pressing twenty times does not bury real alarms."""
    priority = t.priority or Priority.P3
    held = next(
        (
            a
            for a in tx.state.on_board_for_device(e.scheme, e.device_id)
            if a.state is AlarmState.TEST_CALL
        ),
        None,
    )
    if held is not None:
        a = replace(
            held,
            count=held.count + 1,
            event_ids=(*held.event_ids, lifecycle.event_ref(e)),
            priority=higher(held.priority, priority),
            double_handed=held.double_handed or t.double_handed,
        )
    else:
        a = lifecycle.alarm_for_event(
            core,
            tx,
            e,
            kind=kind.value,
            priority=priority,
            state=AlarmState.TEST_CALL,
            ref=ref,
            flat_id=flat_id,
            double_handed=t.double_handed,
            reason=t.reason or f"{kind.value} (recorded only outside a test window)",
        )
    a = lifecycle.transition(
        tx,
        a,
        AlarmState.TEST_CALL,
        None,
        kind=kind.value,
        event_id=e.event_id,
        count=a.count,
        window_until=until.isoformat(),
    )
    tx.cmds.append(
        NotifyControlRoom(
            e.scheme,
            Priority.P3,
            "test_call",
            f"test call: {kind.value} from {e.device_id} (in a test window until"
            f" {until.isoformat()}); nobody is paged. Promote it if it is real.",
            a.alarm_id,
        )
    )
    tx.put_alarm(a)
