"""Supervision, on each tick: overdue alarm deadlines, silent handsets, whether anyone on
shift is routable, devices silent past their allowed misses (judged only up to the ingest
horizon), the gateway falling behind, test windows running out, closed alarms dropped, and
planned visits. A tick costs what has fallen due (the state's deadline heaps), not the estate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from devices.events import Priority
from devices.registry import DeviceType
from devices.scheme import Scheme
from gateway.engine import (
    alarms,
    deadline_rules,
    device_mode,
    dispatch,
    lifecycle,
    routing,
    visit_flow,
)
from gateway.engine.lifecycle import ALARM_NAMESPACE
from gateway.engine.model import (
    Alarm,
    AlarmState,
    NotifyControlRoom,
    RaiseTechnical,
    TickIn,
)

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx


def routable_count(core: Core, tx: _Tx, scheme: Scheme, *, stop_at: int | None = None) -> int:
    """How many carers could be offered an alarm now (counting stops at ``stop_at``).

    Only logged-in carers can be, so only they are looked at (an index of the state)."""
    n = 0
    carers = tx.carer_map()
    for cid in tx.state.logged_in(scheme.id):
        c = carers.get(routing.carer_key(scheme.id, cid))
        if c is None or scheme.carer(cid) is None:
            continue
        if routing.routable(scheme, c, tx.now, core.config.handset_timeout_s)[0]:
            n += 1
            if stop_at is not None and n >= stop_at:
                break
    return n


def check_coverage(core: Core, tx: _Tx, scheme: Scheme) -> None:
    """Nobody routable on shift is itself a P1 for the control room, at once."""
    alerted = scheme.id in tx.state.coverage_alerted
    # Whether anyone is routable is all that matters unless the alert is to be lifted.
    n = routable_count(core, tx, scheme, stop_at=None if alerted else 1)
    if n == 0 and not alerted:
        tx.state.set_coverage_alerted(scheme.id, True)
        tx.cmds.append(
            NotifyControlRoom(
                scheme.id,
                Priority.P1,
                "no_carer_available",
                "no carer on shift is logged in with a working handset",
            )
        )
    elif n > 0 and alerted:
        tx.state.set_coverage_alerted(scheme.id, False)
        tx.cmds.append(
            NotifyControlRoom(
                scheme.id, Priority.P3, "carer_available", f"{n} carer(s) routable again"
            )
        )


def lag(
    core: Core,
    tx: _Tx,
    behind_s: float,
    why: str | None,
    held: Callable[[], Mapping[str, int]],
) -> None:
    """Tell each scheme's control room once that the gateway is behind, and when it has
    caught up: devices are not blamed meanwhile, and somebody must know that."""
    cfg = core.config
    if not tx.state.lag_alerted and behind_s > cfg.lag_alert_s:
        tx.state.set_lag_alerted(True)
        counts = held()
        for sid in sorted(core.schemes):
            tx.cmds.append(
                NotifyControlRoom(
                    sid,
                    Priority.P2,
                    "gateway_behind",
                    f"gateway {round(behind_s)}s behind ({why or 'ingest lagging'}):"
                    f" device silence is judged only up to what has arrived;"
                    f" {counts.get(sid, 0)} device(s) silent on the clock are not blamed yet",
                )
            )
    elif tx.state.lag_alerted and behind_s <= cfg.lag_alert_s / 2:
        tx.state.set_lag_alerted(False)
        for sid in sorted(core.schemes):
            tx.cmds.append(
                NotifyControlRoom(
                    sid,
                    Priority.P3,
                    "gateway_caught_up",
                    f"gateway caught up ({round(behind_s)}s behind): supervision is live",
                )
            )


def held_back(tx: _Tx, judge: datetime) -> dict[str, int]:
    """Per scheme, devices silent on the clock but not up to the ingest horizon (judged
    only when the control room is told the gateway is behind: rare, so a scan is fine)."""
    held: dict[str, int] = {}
    for key, after in tx.state.supervision_pending().items():
        if judge <= after < tx.now:
            sid = key.partition("/")[0]
            held[sid] = held.get(sid, 0) + 1
    return held


def on_tick(core: Core, tx: _Tx, tick: TickIn) -> None:
    """Supervision: what fell due since the last tick, found in the state's deadline heaps,
    so a tick costs what is due, not the estate."""
    cfg = core.config
    now = tx.now
    st = tx.state
    # Silence counts only up to the ingest horizon: what is still queued inside the
    # gateway may be exactly the heartbeat that clears the device.
    judge = now if tick.horizon is None else min(now, tick.horizon)
    # Overdue deadlines fire here too: a missed timer cannot leave an alarm stranded.
    for aid in st.due_alarms_in_order(now):
        cur = tx.alarm_map()[aid]
        if cur.is_open and cur.deadline and cur.deadline.due <= now:
            deadline_rules.on_deadline(core, tx, cur)
    order = core.order
    # Handsets last heard before judge - timeout are silent (``routing.handset_live``).
    silent = st.handsets_silent_before(judge - timedelta(seconds=cfg.handset_timeout_s))
    silent.sort(key=lambda k: order.get(k, -1))
    # Devices whose allowed silence ended before the horizon: no contact.
    quiet = [k for k in st.devices_silent_after(judge) if k in core.devices]
    quiet.sort(key=lambda k: order[k])
    by_scheme: dict[str, tuple[list[str], list[str]]] = {}
    for key in silent:
        by_scheme.setdefault(key.partition("/")[0], ([], []))[0].append(key)
    for key in quiet:
        by_scheme.setdefault(key.partition("/")[0], ([], []))[1].append(key)
    for scheme in core.schemes.values():
        carers, devices = by_scheme.get(scheme.id, ((), ()))
        for key in carers:
            c = tx.carer_map().get(key)
            if c is None or not c.logged_in or scheme.carer(c.carer_id) is None:
                continue
            if key in st.silent_handsets or routing.handset_live(c, judge, cfg.handset_timeout_s):
                continue
            st.set_silent(key, True)
            tx.cmds.append(
                NotifyControlRoom(
                    scheme.id,
                    Priority.P2,
                    "handset_silent",
                    f"handset of carer {c.carer_id} silent; not routable",
                )
            )
            dispatch.withdraw_all(core, tx, scheme.id, c.carer_id, "handset silent")
        core._check_coverage(tx, scheme)
        for key in devices:
            no_contact(core, tx, scheme, key, judge)
    behind_s = (now - judge).total_seconds()
    lag(core, tx, behind_s, tick.behind, lambda: held_back(tx, judge))
    # A test window ends itself when it runs out, and the control room sees it end.
    modes = tx.state.device_mode
    for key in sorted(k for k, until in modes.items() if until <= now):
        device_mode.ended(tx, key, "expired")
    # Closed alarms (and test calls nobody promoted) are kept a while so late actions and
    # the board get a clear answer, then dropped.
    for aid in st.closed_before(now - timedelta(seconds=cfg.closed_keep_s)):
        a = tx.alarm_map().get(aid)
        if a is not None and not a.is_open:
            tx.drop_alarm(aid)
    # Planned visits: late, contact, critical, missed, judged up to the ingest horizon
    # (a check-in still queued inside the gateway must not read as a late visit).
    visit_flow.on_tick(core, tx, judge)


def no_contact(core: Core, tx: _Tx, scheme: Scheme, key: str, judge: datetime) -> None:
    """A device silent for its allowed misses (up to the horizon): tell the control room,
    and for a high-risk resident's hub open a welfare check."""
    cfg = core.config
    now = tx.now
    info = core.devices[key]
    d = info.device
    last = tx.state.device_seen.get(key)
    if last is None or key in tx.state.no_contact or judge - last <= info.limit:
        return
    tx.state.set_no_contact(key, True)
    tx.cmds.append(
        RaiseTechnical(
            scheme.id,
            d.device_id,
            "no_contact",
            f"silent for {cfg.supervision_misses} intervals",
            now,
        )
    )
    resident = info.flat_resident
    if d.type is DeviceType.HUB and resident is not None and "high_risk" in resident.risk_flags:
        a = Alarm(
            alarm_id=str(uuid.uuid5(ALARM_NAMESPACE, f"nocontact/{key}/{last.isoformat()}")),
            scheme=scheme.id,
            kind="no_contact",
            priority=Priority.P2,
            state=AlarmState.RAISED,
            opened_at=now,
            received_at=now,
            last_at=now,
            resident_ref=resident.client_ref,
            flat_id=resident.flat,
            device_id=d.device_id,
            chain=lifecycle.chain_for(cfg.chain, scheme),
            reason="hub silent: resident has no working alarm (welfare check)",
        )
        if lifecycle.open_for(tx, scheme.id, resident.client_ref, None) is None:
            alarms.open_alarm(core, tx, a, None)
