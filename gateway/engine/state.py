"""The engine's state, kept in place with its indexes, and undone when a step fails.

Before, each step worked on a copy-on-write view whose first write copied a whole map: one
heartbeat copied 100,000 devices' last-heard times to record one. Now the maps are changed in
place, every change is written to an undo log first, and a step that raises is rolled back to
where it began (``begin``/``rollback``), so the core stays transactional: a failed step leaves
the state exactly as it was. The shell brackets a whole pass (many steps and the commit) the
same way, so a failed commit also leaves memory as the database has it.

Alongside the primary maps the state keeps indexes, updated by the same mutators, so no step
scans the estate: the alarm that holds an event, open alarms by resident and by device, live
offers by carer, logged-in carers by scheme, and heaps of deadlines (alarms' timers, device
supervision, handset silence, closed alarms to drop). ``index_snapshot`` and a rebuild from the
primary maps let the property tests prove they agree after any sequence of inputs.

It also records which rows changed since the shell last persisted (``take_dirty``), so the
shell writes what changed instead of diffing everything.

Outside the core, treat the maps as read-only: change them only through the mutators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.engine.deadlines import DeadlineHeap
from gateway.engine.model import Alarm, AlarmState, CarerState
from gateway.engine.visits import NightPlan

_MISSING: Any = object()
_NEVER = datetime(1, 1, 1, tzinfo=UTC)


def _carer_key(scheme: str, carer_id: str) -> str:
    return f"{scheme}/{carer_id}"


@dataclass(slots=True)
class Dirty:
    """What changed since the last persisted pass."""

    alarms: set[str] = field(default_factory=set)
    carers: set[str] = field(default_factory=set)
    faults: set[str] = field(default_factory=set)
    offline: set[str] = field(default_factory=set)  # no_contact
    modes: set[str] = field(default_factory=set)
    plans: set[str] = field(default_factory=set)  # visit plans, "<scheme>/<night>"
    misc: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.alarms
            or self.carers
            or self.faults
            or self.offline
            or self.modes
            or self.plans
            or self.misc
        )


class EngineState:
    """Alarms, carers, devices' last contact and the engine's flags, with their indexes."""

    __slots__ = (
        "_alarms",
        "_by_device",
        "_by_resident",
        "_carers",
        "_closed",
        "_coverage",
        "_deadlines",
        "_depth",
        "_dirty",
        "_disturbances",
        "_faults",
        "_handsets",
        "_lag",
        "_limits",
        "_log",
        "_logged_in",
        "_modes",
        "_next_seq",
        "_no_contact",
        "_offers",
        "_open",
        "_plans",
        "_refs",
        "_seen",
        "_seq",
        "_silent",
        "_supervision",
    )

    def __init__(
        self,
        alarms: Mapping[str, Alarm] | None = None,
        carers: Mapping[str, CarerState] | None = None,
        device_seen: Mapping[str, datetime] | None = None,
        device_mode: Mapping[str, datetime] | None = None,
        no_contact: Iterable[str] = (),
        silent_handsets: Iterable[str] = (),
        coverage_alerted: Iterable[str] = (),
        disturbances: Mapping[str, int] | None = None,
        lag_alerted: bool = False,
        device_faults: Mapping[str, datetime] | None = None,
        visit_plans: Mapping[str, NightPlan] | None = None,
    ) -> None:
        self._alarms: dict[str, Alarm] = {}
        self._carers: dict[str, CarerState] = {}
        self._seen: dict[str, datetime] = dict(device_seen or {})
        self._modes: dict[str, datetime] = dict(device_mode or {})
        self._no_contact: set[str] = set(no_contact)
        self._silent: set[str] = set(silent_handsets)
        self._coverage: set[str] = set(coverage_alerted)
        self._disturbances: dict[str, int] = dict(disturbances or {})
        self._lag = lag_alerted
        self._faults: dict[str, datetime] = dict(device_faults or {})
        # Planned visits by "<scheme>/<night>" (gateway.engine.visit_flow).
        self._plans: dict[str, NightPlan] = dict(visit_plans or {})
        # Indexes (derived from the maps above; see ``index_snapshot``).
        self._seq: dict[str, int] = {}  # alarm -> insertion order, the order of ``alarms``
        self._next_seq = 0
        self._refs: dict[str, str] = {}  # "<scheme>/<device>/<event id>" -> alarm
        self._by_resident: dict[str, set[str]] = {}  # "<scheme>/<ref>" -> open alarms
        self._by_device: dict[str, set[str]] = {}  # "<scheme>/<device>" -> alarms on the board
        self._offers: dict[str, set[str]] = {}  # "<scheme>/<carer>" -> open alarms offered
        self._open = 0  # how many alarms are open
        self._deadlines: DeadlineHeap[str] = DeadlineHeap()  # open alarm -> its deadline
        self._closed: DeadlineHeap[str] = DeadlineHeap()  # closed alarm -> its last step
        self._logged_in: dict[str, set[str]] = {}  # scheme -> carer ids logged in
        self._handsets: DeadlineHeap[str] = DeadlineHeap()  # carer key -> handset last heard
        # Device supervision needs each device's allowed silence, which only the core knows
        # (from the schemes): ``bind_supervision`` builds it.
        self._limits: Mapping[str, timedelta] | None = None
        self._supervision: DeadlineHeap[str] = DeadlineHeap()  # device key -> silent after
        self._log: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._depth = 0
        self._dirty = Dirty()
        for a in (alarms or {}).values():
            self._seq[a.alarm_id] = self._next_seq
            self._next_seq += 1
            self._alarms[a.alarm_id] = a
            self._index_alarm(a.alarm_id, None, a)
        for k, c in (carers or {}).items():
            self._carers[k] = c
            self._index_carer(k, None, c)

    # ---- read-only views --------------------------------------------------------------------

    @property
    def alarms(self) -> Mapping[str, Alarm]:
        return self._alarms

    @property
    def carers(self) -> Mapping[str, CarerState]:
        return self._carers

    @property
    def device_seen(self) -> Mapping[str, datetime]:
        return self._seen

    @property
    def device_mode(self) -> Mapping[str, datetime]:
        return self._modes

    @property
    def no_contact(self) -> Set[str]:
        return self._no_contact

    @property
    def silent_handsets(self) -> Set[str]:
        return self._silent

    @property
    def coverage_alerted(self) -> Set[str]:
        return self._coverage

    @property
    def disturbances(self) -> Mapping[str, int]:
        return self._disturbances

    @property
    def lag_alerted(self) -> bool:
        return self._lag

    @property
    def device_faults(self) -> Mapping[str, datetime]:
        return self._faults

    @property
    def visit_plans(self) -> Mapping[str, NightPlan]:
        return self._plans

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EngineState):
            return NotImplemented
        return (
            self._alarms == other._alarms
            and self._carers == other._carers
            and self._seen == other._seen
            and self._modes == other._modes
            and self._no_contact == other._no_contact
            and self._silent == other._silent
            and self._coverage == other._coverage
            and self._disturbances == other._disturbances
            and self._lag == other._lag
            and self._faults == other._faults
            and self._plans == other._plans
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"EngineState({len(self._alarms)} alarms, {len(self._carers)} carers,"
            f" {len(self._seen)} devices)"
        )

    # ---- transactions -----------------------------------------------------------------------

    def begin(self) -> int:
        """Start a (possibly nested) transaction; the mark to roll back to."""
        self._depth += 1
        return len(self._log)

    def commit(self, mark: int) -> None:
        """End the transaction begun at ``mark``, keeping its changes (the outermost one
        forgets the undo log)."""
        self._depth -= 1
        if self._depth <= 0:
            self._depth = 0
            self._log.clear()

    def rollback(self, mark: int) -> None:
        """Undo every change since ``mark``, newest first, and end that transaction."""
        log = self._log
        while len(log) > mark:
            fn, args = log.pop()
            fn(*args)
        self.commit(mark)

    def _undo(self, fn: Callable[..., None], *args: Any) -> None:
        if self._depth:
            self._log.append((fn, args))

    # ---- mutators ---------------------------------------------------------------------------

    def put_alarm(self, a: Alarm) -> None:
        aid = a.alarm_id
        old = self._alarms.get(aid)
        if old is a:
            return
        if old is None:
            self._undo(self._restore_alarm, aid, None, None)
            self._seq[aid] = self._next_seq
            self._next_seq += 1
        else:
            self._undo(self._restore_alarm, aid, old, self._seq[aid])
        self._alarms[aid] = a
        self._index_alarm(aid, old, a)
        self._dirty.alarms.add(aid)

    def drop_alarm(self, alarm_id: str) -> None:
        old = self._alarms.get(alarm_id)
        if old is None:
            return
        self._undo(self._restore_alarm, alarm_id, old, self._seq[alarm_id])
        del self._alarms[alarm_id]
        del self._seq[alarm_id]
        self._index_alarm(alarm_id, old, None)
        self._dirty.alarms.add(alarm_id)

    def _restore_alarm(self, aid: str, old: Alarm | None, seq: int | None) -> None:
        cur = self._alarms.get(aid)
        if old is None:
            self._alarms.pop(aid, None)
            self._seq.pop(aid, None)
        else:
            reinsert = cur is None
            self._alarms[aid] = old
            self._seq[aid] = seq if seq is not None else self._next_seq
            if reinsert and seq is not None and any(s > seq for s in self._seq.values()):
                # A dropped alarm comes back in its place (an error path only, so O(n) is fine).
                items = sorted(self._alarms.items(), key=lambda kv: self._seq[kv[0]])
                self._alarms.clear()
                self._alarms.update(items)
        self._index_alarm(aid, cur, old)
        self._dirty.alarms.add(aid)

    def put_carer(self, key: str, c: CarerState) -> None:
        old = self._carers.get(key)
        if old is c:
            return
        self._undo(self._restore_carer, key, old)
        self._carers[key] = c
        self._index_carer(key, old, c)
        self._dirty.carers.add(key)

    def _restore_carer(self, key: str, old: CarerState | None) -> None:
        cur = self._carers.get(key)
        if old is None:
            self._carers.pop(key, None)
        else:
            self._carers[key] = old
        self._index_carer(key, cur, old)
        self._dirty.carers.add(key)

    def see(self, key: str, at: datetime) -> None:
        """A device was heard at ``at`` (not persisted: the journal keeps last contact)."""
        self._undo(self._restore_seen, key, self._seen.get(key, _MISSING))
        self._seen[key] = at
        self._index_device(key)

    def _restore_seen(self, key: str, old: Any) -> None:
        if old is _MISSING:
            self._seen.pop(key, None)
        else:
            self._seen[key] = old
        self._index_device(key)

    def set_mode(self, key: str, until: datetime | None) -> None:
        old = self._modes.get(key)
        if old == until:
            return
        self._undo(self._restore_map, self._modes, key, old, self._dirty.modes)
        self._restore_map(self._modes, key, until, self._dirty.modes)

    def set_fault(self, key: str, since: datetime | None) -> bool:
        """Open (``since``) or clear (None) a device fault; True if that changed anything."""
        if (key in self._faults) == (since is not None):
            return False
        self._undo(self._restore_map, self._faults, key, self._faults.get(key), self._dirty.faults)
        self._restore_map(self._faults, key, since, self._dirty.faults)
        return True

    def _restore_map(
        self, m: dict[str, datetime], key: str, value: datetime | None, dirty: set[str]
    ) -> None:
        if value is None:
            m.pop(key, None)
        else:
            m[key] = value
        dirty.add(key)

    def disturb(self, key: str) -> int:
        n = self._disturbances.get(key, 0) + 1
        self._undo(self._restore_disturbance, key, n - 1)
        self._disturbances[key] = n
        self._dirty.misc = True
        return n

    def _restore_disturbance(self, key: str, n: int) -> None:
        if n:
            self._disturbances[key] = n
        else:
            self._disturbances.pop(key, None)
        self._dirty.misc = True

    def set_no_contact(self, key: str, on: bool) -> None:
        if (key in self._no_contact) == on:
            return
        self._undo(self._flip_no_contact, key, not on)
        self._flip_no_contact(key, on)

    def _flip_no_contact(self, key: str, on: bool) -> None:
        if on:
            self._no_contact.add(key)
        else:
            self._no_contact.discard(key)
        self._dirty.offline.add(key)
        self._index_device(key)

    def set_silent(self, key: str, on: bool) -> None:
        if (key in self._silent) == on:
            return
        self._undo(self._flip_silent, key, not on)
        self._flip_silent(key, on)

    def _flip_silent(self, key: str, on: bool) -> None:
        if on:
            self._silent.add(key)
        else:
            self._silent.discard(key)
        self._dirty.misc = True
        c = self._carers.get(key)
        self._index_carer(key, c, c)

    def set_coverage_alerted(self, scheme: str, on: bool) -> None:
        if (scheme in self._coverage) == on:
            return
        self._undo(self._flip_coverage, scheme, not on)
        self._flip_coverage(scheme, on)

    def _flip_coverage(self, scheme: str, on: bool) -> None:
        if on:
            self._coverage.add(scheme)
        else:
            self._coverage.discard(scheme)
        self._dirty.misc = True

    def set_lag_alerted(self, on: bool) -> None:
        if self._lag == on:
            return
        self._undo(self._flip_lag, not on)
        self._flip_lag(on)

    def _flip_lag(self, on: bool) -> None:
        self._lag = on
        self._dirty.misc = True

    def put_plan(self, key: str, plan: NightPlan | None) -> None:
        """Set (or with None drop) one night's visit plan."""
        old = self._plans.get(key)
        if old is plan:
            return
        self._undo(self._restore_plan, key, old)
        self._restore_plan(key, plan)

    def _restore_plan(self, key: str, plan: NightPlan | None) -> None:
        if plan is None:
            self._plans.pop(key, None)
        else:
            self._plans[key] = plan
        self._dirty.plans.add(key)

    # ---- index maintenance ------------------------------------------------------------------

    @staticmethod
    def _alarm_marks(
        a: Alarm | None,
    ) -> tuple[str | None, str | None, tuple[str, ...], datetime | None, datetime | None]:
        """What ``a`` contributes to each index: (resident key, device key, carers offered,
        deadline, closed at)."""
        if a is None:
            return None, None, (), None, None
        is_open = a.is_open
        res = f"{a.scheme}/{a.resident_ref}" if is_open and a.resident_ref is not None else None
        on_board = is_open or a.state is AlarmState.TEST_CALL
        dev = f"{a.scheme}/{a.device_id}" if on_board and a.device_id is not None else None
        offered = tuple(_carer_key(a.scheme, o.carer_id) for o in a.offers) if is_open else ()
        due = a.deadline.due if is_open and a.deadline is not None else None
        closed = None if is_open else a.last_at
        return res, dev, offered, due, closed

    def _index_alarm(self, aid: str, old: Alarm | None, new: Alarm | None) -> None:
        if old is not None and (new is None or old.event_ids is not new.event_ids):
            for r in old.event_ids:
                if self._refs.get(r) == aid:
                    del self._refs[r]
        if new is not None and (old is None or old.event_ids is not new.event_ids):
            for r in new.event_ids:
                self._refs[r] = aid
        o_res, o_dev, o_off, o_due, o_closed = self._alarm_marks(old)
        n_res, n_dev, n_off, n_due, n_closed = self._alarm_marks(new)
        self._open += (new is not None and new.is_open) - (old is not None and old.is_open)
        if o_res != n_res:
            _unlink(self._by_resident, o_res, aid)
            _link(self._by_resident, n_res, aid)
        if o_dev != n_dev:
            _unlink(self._by_device, o_dev, aid)
            _link(self._by_device, n_dev, aid)
        if o_off != n_off:
            for k in o_off:
                _unlink(self._offers, k, aid)
            for k in n_off:
                _link(self._offers, k, aid)
        if o_due != n_due:
            if n_due is None:
                self._deadlines.discard(aid)
            else:
                self._deadlines.set(aid, n_due)
        if o_closed != n_closed:
            if n_closed is None:
                self._closed.discard(aid)
            else:
                self._closed.set(aid, n_closed)

    def _index_carer(self, key: str, old: CarerState | None, new: CarerState | None) -> None:
        if old is not None and (new is None or not new.logged_in):
            _unlink(self._logged_in, old.scheme, old.carer_id)
        if new is not None and new.logged_in:
            _link(self._logged_in, new.scheme, new.carer_id)
        if new is not None and new.logged_in and key not in self._silent:
            # Never heard (not possible after a login, but then it is silent at once).
            self._handsets.set(key, new.handset_seen or _NEVER)
        else:
            self._handsets.discard(key)

    def _index_device(self, key: str) -> None:
        limits = self._limits
        if limits is None:
            return
        limit = limits.get(key)
        seen = self._seen.get(key)
        if limit is None or seen is None or key in self._no_contact:
            self._supervision.discard(key)
        else:
            self._supervision.set(key, seen + limit)

    def bind_supervision(self, limits: Mapping[str, timedelta]) -> None:
        """Give each known device its allowed silence (from the schemes), and build the
        supervision heap over the devices heard from. Once per state; a no-op after."""
        if self._limits is limits:
            return
        self._limits = limits
        self._supervision = DeadlineHeap()
        for key in self._seen:
            self._index_device(key)

    # ---- queries ----------------------------------------------------------------------------

    def alarm_with_event(self, ref: str) -> str | None:
        """The alarm that holds this event (``"<scheme>/<device>/<event id>"``), if any."""
        return self._refs.get(ref)

    def _ordered(self, ids: Iterable[str]) -> list[Alarm]:
        seq = self._seq
        return [self._alarms[i] for i in sorted(ids, key=seq.__getitem__)]

    def open_for_resident(self, scheme: str, resident_ref: str) -> list[Alarm]:
        """The resident's open alarms, oldest first."""
        ids = self._by_resident.get(f"{scheme}/{resident_ref}")
        return self._ordered(ids) if ids else []

    def on_board_for_device(self, scheme: str, device_id: str) -> list[Alarm]:
        """The device's open alarms and test calls, oldest first."""
        ids = self._by_device.get(f"{scheme}/{device_id}")
        return self._ordered(ids) if ids else []

    def offered_to(self, scheme: str, carer_id: str) -> list[Alarm]:
        """Open alarms with a live offer to this carer, oldest first."""
        ids = self._offers.get(_carer_key(scheme, carer_id))
        return self._ordered(ids) if ids else []

    def logged_in(self, scheme: str) -> Set[str]:
        """Carer ids logged in at this scheme."""
        return self._logged_in.get(scheme, _EMPTY)

    @property
    def open_count(self) -> int:
        return self._open

    def next_due(self) -> datetime | None:
        """The earliest deadline of any open alarm."""
        return self._deadlines.first()

    def due_alarms(self, now: datetime) -> list[Alarm]:
        """Open alarms whose deadline is at or before ``now``, earliest due first."""
        return [self._alarms[aid] for _, aid in self._deadlines.due(now)]

    def due_alarms_in_order(self, now: datetime) -> list[str]:
        """As ``due_alarms``, in the order the alarms were raised (ids)."""
        ids = [aid for _, aid in self._deadlines.due(now)]
        ids.sort(key=self._seq.__getitem__)
        return ids

    def closed_before(self, t: datetime) -> list[str]:
        """Closed alarms (and test calls) whose last step was before ``t``."""
        return [aid for _, aid in self._closed.due(t, inclusive=False)]

    def handsets_silent_before(self, t: datetime) -> list[str]:
        """Logged-in, not yet silent carers whose handset was last heard before ``t``."""
        return [k for _, k in self._handsets.due(t, inclusive=False)]

    def devices_silent_after(self, t: datetime) -> list[str]:
        """Supervised devices whose allowed silence ended before ``t`` (none unless bound)."""
        return [k for _, k in self._supervision.due(t, inclusive=False)]

    def supervision_pending(self) -> Mapping[str, datetime]:
        """Device key -> the time its allowed silence ends (devices in no contact excluded)."""
        return self._supervision.pending

    # ---- persistence ------------------------------------------------------------------------

    def take_dirty(self) -> Dirty:
        """What changed since the last call (the shell persists it, then calls again)."""
        d, self._dirty = self._dirty, Dirty()
        return d

    def mark_all_dirty(self) -> None:
        """Everything is to be written again (after reading an older layout)."""
        d = self._dirty
        d.alarms |= set(self._alarms)
        d.carers |= set(self._carers)
        d.faults |= set(self._faults)
        d.offline |= set(self._no_contact)
        d.modes |= set(self._modes)
        d.plans |= set(self._plans)
        d.misc = True

    # ---- proof ------------------------------------------------------------------------------

    def index_snapshot(self) -> dict[str, Any]:
        """Every index in a comparable form: equal to a rebuild's after any inputs."""
        return {
            "open": self._open,
            "order": sorted(self._seq, key=self._seq.__getitem__),
            "dict_order": list(self._alarms),
            "refs": dict(self._refs),
            "by_resident": {k: set(v) for k, v in self._by_resident.items() if v},
            "by_device": {k: set(v) for k, v in self._by_device.items() if v},
            "offers": {k: set(v) for k, v in self._offers.items() if v},
            "logged_in": {k: set(v) for k, v in self._logged_in.items() if v},
            "deadlines": dict(self._deadlines.pending),
            "closed": dict(self._closed.pending),
            "handsets": dict(self._handsets.pending),
            "supervision": dict(self._supervision.pending) if self._limits is not None else None,
        }

    def rebuilt(self) -> EngineState:
        """A new state built from scratch from this one's primary maps (same supervision)."""
        fresh = EngineState(
            self._alarms,
            self._carers,
            self._seen,
            self._modes,
            self._no_contact,
            self._silent,
            self._coverage,
            self._disturbances,
            self._lag,
            self._faults,
            self._plans,
        )
        if self._limits is not None:
            fresh.bind_supervision(self._limits)
        return fresh

    def check_heaps(self) -> None:
        for h in (self._deadlines, self._closed, self._handsets, self._supervision):
            h.check()


_EMPTY: Set[str] = frozenset()


def _link(index: dict[str, set[str]], key: str | None, value: str) -> None:
    if key is not None:
        bucket = index.get(key)
        if bucket is None:
            index[key] = {value}
        else:
            bucket.add(value)


def _unlink(index: dict[str, set[str]], key: str | None, value: str) -> None:
    if key is not None:
        bucket = index.get(key)
        if bucket is not None:
            bucket.discard(value)
            if not bucket:
                del index[key]
