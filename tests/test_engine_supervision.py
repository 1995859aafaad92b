"""Supervision never blames a device for the gateway's own lag (pure core, fake clock).

"No contact" is judged against the ingest horizon (how far the gateway has got with what
arrived), not the wall clock alone; when the gateway is behind the control room is told that,
once, instead of one alarm per device."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.registry import DeviceType
from gateway.engine import horizon
from gateway.engine.horizon import IngestSample
from gateway.engine.model import (
    EventIn,
    NotifyControlRoom,
    RaiseTechnical,
    TickIn,
)
from tests.engine_helpers import HZC, NIGHT, Driver

HUBS = sorted(d.device_id for d in HZC.devices if d.type is DeviceType.HUB)
HUB_LIMIT_S = 3 * 60  # three missed 60 s heartbeats


def no_contacts(cmds: list[object]) -> list[str]:
    return [
        c.device_id
        for c in cmds
        if isinstance(c, RaiseTechnical) and c.code == "no_contact" and not c.cleared
    ]


def alerts(cmds: list[object], code: str) -> list[NotifyControlRoom]:
    return [c for c in cmds if isinstance(c, NotifyControlRoom) and c.code == code]


def beat(d: Driver, device: str, received_at: datetime) -> None:
    d.feed(
        EventIn(
            HZC.id,
            f"hb-{device}-{received_at.isoformat()}",
            device,
            "heartbeat",
            received_at,
            received_at,
        )
    )


def all_hubs_beat(d: Driver, at: datetime) -> None:
    for hub in HUBS:
        beat(d, hub, at)


# ---- the core ---------------------------------------------------------------------------------


def test_a_gateway_backlog_is_one_alert_not_a_no_contact_per_hub() -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    all_hubs_beat(d, d.now)
    stuck_at = d.now + timedelta(seconds=10)  # ingest got this far, then fell behind
    d.advance(3600)  # an hour of wall clock: every hub is far past its limit on the clock
    d.heartbeat_all()
    cmds = d.feed(TickIn(horizon=stuck_at, behind="ingest queue full"))
    assert no_contacts(cmds) == []
    [behind] = alerts(cmds, "gateway_behind")
    assert "3590s behind" in behind.message and "ingest queue full" in behind.message
    assert f"{len(HUBS)} device(s)" in behind.message
    # Still behind: nothing more.
    d.advance(5)
    cmds = d.feed(TickIn(horizon=stuck_at + timedelta(seconds=5), behind="ingest queue full"))
    assert no_contacts(cmds) == [] and not alerts(cmds, "gateway_behind")
    # The backlog drains: the hubs' heartbeats (received long ago) arrive, then it catches up.
    for minute in range(1, 61):
        all_hubs_beat(d, NIGHT + timedelta(minutes=minute))
    cmds = d.feed(TickIn(horizon=d.now))
    assert no_contacts(cmds) == []
    assert alerts(cmds, "gateway_caught_up")


def test_a_really_silent_hub_is_raised_once_the_gateway_has_caught_up() -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    quiet, *others = HUBS
    all_hubs_beat(d, d.now)
    stuck_at = d.now + timedelta(seconds=30)
    d.advance(1800)
    d.heartbeat_all()
    assert no_contacts(d.feed(TickIn(horizon=stuck_at, behind="x"))) == []
    for minute in range(1, 31):  # the backlog holds heartbeats from every hub but one
        for hub in others:
            beat(d, hub, NIGHT + timedelta(minutes=minute))
    assert no_contacts(d.feed(TickIn(horizon=d.now))) == [quiet]


def test_heard_means_when_it_reached_the_gateway_not_when_the_engine_applied_it() -> None:
    d = Driver()
    hub = HUBS[0]
    d.advance(600)
    beat(d, hub, NIGHT + timedelta(seconds=30))  # applied late, from the backlog
    assert d.state.device_seen[f"{HZC.id}/{hub}"] == NIGHT + timedelta(seconds=30)


def test_caught_up_is_told_only_after_a_behind() -> None:
    d = Driver()
    all_hubs_beat(d, d.now)
    d.advance(30)
    cmds = d.feed(TickIn(horizon=d.now))
    assert not alerts(cmds, "gateway_caught_up") and not alerts(cmds, "gateway_behind")


# ---- the horizon ------------------------------------------------------------------------------

T0 = NIGHT


def sample(**kw: object) -> IngestSample:
    base: dict[str, object] = {
        "read_at": T0 + timedelta(seconds=100),
        "fence_at": T0 + timedelta(seconds=98),
        "at_head": True,
        "connected_s": 30.0,
        "queue_depth": 0,
        "queue_max": 500,
        "late_s": 0.0,
    }
    base.update(kw)
    return IngestSample(**base)  # type: ignore[arg-type]


def test_an_applied_fence_vouches_for_its_own_time_and_no_later() -> None:
    assert horizon.advance(T0, sample()) == T0 + timedelta(seconds=98)
    assert horizon.behind_reason(sample()) is None
    # A fence never vouches past the pass's own time.
    s = sample(fence_at=T0 + timedelta(seconds=300))
    assert horizon.advance(T0, s) == T0 + timedelta(seconds=100)


def test_a_drained_looking_pipeline_without_a_fence_vouches_for_nothing_new() -> None:
    # Queue empty, connected, on time, journal read to its head: exactly how a process looks
    # in the instant after a SIGSTOP thaw, with thousands of heartbeats still in its socket
    # and the broker's queue. Only a fence that came back can tell.
    s = sample(fence_at=None)
    assert horizon.advance(T0, s) == T0
    assert "fence" in (horizon.behind_reason(s) or "")


def test_diagnostics_say_why_the_horizon_lags() -> None:
    for s, why in (
        (sample(queue_depth=500), "full"),
        (sample(queue_depth=12), "waiting"),
        (sample(late_s=120.0), "late"),
        (sample(connected_s=None), "not connected"),
        (sample(connected_s=0.2), "reconnected"),
        (sample(at_head=False), "backlog"),
    ):
        assert why in (horizon.behind_reason(s) or ""), s


def test_the_horizon_never_goes_backwards() -> None:
    later = T0 + timedelta(seconds=500)
    assert horizon.advance(later, sample()) == later


# ---- property: nobody is blamed inside the horizon ----------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=240),  # wall-clock seconds pass
            st.lists(st.sampled_from(HUBS[:6]), max_size=6),  # hubs whose heartbeats arrive
            st.integers(min_value=0, max_value=7200),  # how far behind ingest is
            st.integers(min_value=0, max_value=600),  # how old the applied heartbeats are
        ),
        min_size=1,
        max_size=25,
    )
)
def test_no_contact_only_when_silent_up_to_the_horizon_and_lag_alerts_alternate(
    steps: list[tuple[int, list[str], int, int]],
) -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    told: list[str] = []
    prev_horizon = d.now
    for passed, beating, behind_s, age_s in steps:
        d.advance(passed)
        d.heartbeat_all()
        # The horizon only moves forward; heartbeats applied now arrived before it.
        h = max(prev_horizon, d.now - timedelta(seconds=behind_s))
        prev_horizon = h
        for hub in beating:
            heard = max(T0, h - timedelta(seconds=age_s))
            beat(d, hub, min(heard, h))
        seen_before = dict(d.state.device_seen)
        cmds = d.feed(TickIn(horizon=h, behind="test"))
        for device in no_contacts(cmds):
            last = seen_before[f"{HZC.id}/{device}"]
            assert (h - last).total_seconds() > HUB_LIMIT_S or device not in HUBS[:6], (
                f"{device} blamed though heard {(h - last).total_seconds():.0f}s before horizon"
            )
        told += [
            c.code
            for c in cmds
            if isinstance(c, NotifyControlRoom)
            and c.code in ("gateway_behind", "gateway_caught_up")
        ]
    # One alert each way per episode: behind, caught up, behind... never two in a row.
    assert all(a != b for a, b in itertools.pairwise(told)), told
    if told:
        assert told[0] == "gateway_behind"
