"""Sleep-in disturbances: more than two attended alarms in one night make it a waking night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devices.scheme import parse_scheme
from gateway.engine.core import Core, night_of
from gateway.engine.model import (
    ActionIn,
    ActionKind,
    EventIn,
    NotifyControlRoom,
    Outcome,
    PresenceIn,
    RecordTransition,
)
from tests.engine_helpers import Driver, offers

SCHEME = """
id: elm-house
name: Elm House supported living
kind: supported_housing
sites:
  - id: elm
    name: Elm House
    blocks:
      - id: E
        name: Elm House
        position: {x: 0, y: 0}
        floors: 2
        lift: false
        flats:
          - {id: E-1, number: "1", floor: 0, position: {x: 5, y: 0}}
          - {id: E-2, number: "2", floor: 0, position: {x: 10, y: 0}}
          - {id: E-3, number: "3", floor: 1, position: {x: 5, y: 0}}
residents:
  - {client_ref: ELM-0001, display_name: Test Person One, flat: E-1, need: high}
  - {client_ref: ELM-0002, display_name: Test Person Two, flat: E-2, need: medium}
  - {client_ref: ELM-0003, display_name: Test Person Three, flat: E-3, need: medium}
devices:
  - {device_id: elm-1-pendant, type: pendant, resident: ELM-0001}
  - {device_id: elm-2-pendant, type: pendant, resident: ELM-0002}
  - {device_id: elm-3-pendant, type: pendant, resident: ELM-0003}
carers:
  - {id: si-01, display_name: Sleep In Worker, skills: [first_aid], handset_id: hs-si-01}
rota:
  - {carer: si-01, role: sleep_in, start: "22:00", end: "08:00", days: all}
"""


def test_three_attended_alarms_flag_the_night_as_waking() -> None:
    scheme = parse_scheme(SCHEME, "elm-house.yaml")
    start = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    d = Driver(start, Core({scheme.id: scheme}))
    d.feed(PresenceIn(scheme.id, "si-01", "login", None))
    flagged: list[NotifyControlRoom] = []
    for i, device in enumerate(["elm-1-pendant", "elm-2-pendant", "elm-3-pendant"]):
        d.heartbeat_all()
        cmds = d.feed(
            EventIn(
                scheme.id,
                f"00000000-0000-4000-8000-00000000000{i}",
                device,
                "pendant_press",
                d.now,
                d.now,
            )
        )
        [o] = offers(cmds)
        d.feed(ActionIn(scheme.id, "si-01", ActionKind.ACCEPT, o.alarm_id, o.offer_id))
        d.advance(60)
        cmds = d.feed(ActionIn(scheme.id, "si-01", ActionKind.ARRIVED, o.alarm_id))
        flagged += [
            c
            for c in cmds
            if isinstance(c, NotifyControlRoom) and c.code == "sleep_in_waking_night"
        ]
        d.feed(
            ActionIn(scheme.id, "si-01", ActionKind.RESOLVED, o.alarm_id, None, Outcome.ASSISTED)
        )
        assert (len(flagged) == 1) == (i == 2), f"flag after {i + 1} disturbances"
        d.advance(timedelta(hours=1).total_seconds())
    counts = [
        c.detail["count"]
        for c in d.log
        if isinstance(c, RecordTransition) and c.state == "sleep_in_disturbance"
    ]
    assert counts == [1, 2, 3]
    night = night_of(start)
    assert d.state.disturbances == {f"elm-house/si-01/{night}": 3}


def test_night_runs_noon_to_noon() -> None:
    assert night_of(datetime(2026, 11, 24, 23, 0)) == "2026-11-24"
    assert night_of(datetime(2026, 11, 25, 3, 0)) == "2026-11-24"
    assert night_of(datetime(2026, 11, 25, 13, 0)) == "2026-11-25"
