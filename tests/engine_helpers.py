"""Helpers for driving the pure engine core on the Hazelhurst Court example."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from devices.registry import DeviceType
from devices.scheme import Scheme, load_scheme
from gateway.engine.core import Core, EngineState
from gateway.engine.model import (
    ActionIn,
    ActionKind,
    Command,
    EventIn,
    Input,
    Outcome,
    Position,
    PresenceIn,
    SendOffer,
)
from tests.conftest import SCHEME

HZC: Scheme = load_scheme(SCHEME)
# Tuesday 24 November 2026, 02:14 in London (GMT in winter): the two waking-night carers are on.
NIGHT = datetime(2026, 11, 24, 2, 14, tzinfo=UTC)


def device_in(flat: str, kind: DeviceType = DeviceType.PENDANT) -> str:
    for d in HZC.devices:
        f = HZC.flat_of(d)
        if d.type is kind and f is not None and f.id == flat:
            return d.device_id
    raise LookupError(f"no {kind} in {flat}")


def resident_with(flag: str) -> Any:
    return next(r for r in HZC.residents if flag in r.risk_flags)


class Driver:
    """Feeds inputs to the core, keeps the state and every command, advances a fake clock."""

    def __init__(self, now: datetime = NIGHT, core: Core | None = None) -> None:
        self.core = core or Core({HZC.id: HZC})
        self.now = now
        self.state: EngineState = self.core.initial_state(now)
        self.log: list[Command] = []

    def feed(self, inp: Input) -> list[Command]:
        self.state, cmds = self.core.step(self.state, inp, self.now)
        self.log.extend(cmds)
        return cmds

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def login(self, carer: str, flat: str | None = None) -> list[Command]:
        return self.feed(PresenceIn(HZC.id, carer, "login", Position(flat=flat)))

    def heartbeat_all(self) -> None:
        for c in self.state.carers.values():
            if c.logged_in:
                self.feed(PresenceIn(c.scheme, c.carer_id, "heartbeat"))

    def event(
        self, device: str, kind: str = "pendant_press", event_id: str | None = None
    ) -> list[Command]:
        return self.feed(
            EventIn(HZC.id, event_id or str(uuid.uuid4()), device, kind, self.now, self.now)
        )

    def act(
        self,
        carer: str,
        action: ActionKind,
        alarm_id: str,
        offer_id: str | None = None,
        outcome: Outcome | None = None,
        note: str = "",
    ) -> list[Command]:
        return self.feed(ActionIn(HZC.id, carer, action, alarm_id, offer_id, outcome, note))


def offers(cmds: list[Command]) -> list[SendOffer]:
    return [c for c in cmds if isinstance(c, SendOffer)]
