"""Planned visits as the API shows them, read from the engine's memory (never the database).

A night the engine holds (the live one, the one before, a future one with changes) is shown
as held; a future night within ``visit_flow.AHEAD`` that nobody has changed yet is shown as
the schedule would plan it. Older nights are in ``visit_events`` only.
"""

from __future__ import annotations

from datetime import date, datetime

from api_models.visits import CarerRun, NightVisits, RunVisit, VisitView
from devices.scheme import Scheme
from gateway.engine import visit_flow
from gateway.engine import visits as V
from gateway.engine.core import Core, EngineState
from gateway.engine.model import VisitControlIn, to_json


def plan_for(
    core: Core, state: EngineState, scheme_id: str, night: date | None, now: datetime
) -> V.NightPlan | None:
    schedule = core.schedules.get(scheme_id)
    scheme = core.schemes.get(scheme_id)
    if schedule is None or scheme is None:
        return None
    live = V.plan_night(now, scheme.tz)
    night = night or live
    held = state.visit_plans.get(V.plan_key(scheme_id, night))
    if held is not None:
        return held
    if live <= night <= live + visit_flow.AHEAD:
        return V.NightPlan(scheme_id, night, V.night_plan(schedule, night, scheme.tz))
    return None


def visit_view(v: V.Visit) -> VisitView:
    return VisitView.model_validate(to_json(v))


def night_visits(plan: V.NightPlan) -> NightVisits:
    ordered = sorted(plan.visits.values(), key=lambda v: (v.agreed_at, v.visit_id))
    return NightVisits(
        scheme=plan.scheme,
        night=plan.night,
        ended=plan.ended,
        visits=[visit_view(v) for v in ordered],
    )


ALREADY = "already"


def check_change(core: Core, state: EngineState, inp: VisitControlIn, now: datetime) -> str | None:
    """None if the change applies to the night as held now, ``ALREADY`` if the night is
    already where it wants it, else why not."""
    scheme = core.schemes.get(inp.scheme)
    schedule = core.schedules.get(inp.scheme)
    if scheme is None or schedule is None:
        return f"scheme {inp.scheme} has no visit schedule"
    plan = plan_for(core, state, inp.scheme, inp.night, now)
    if plan is None:
        return "that night is past or too far ahead"
    if visit_flow.already(plan, inp):
        return ALREADY
    return visit_flow.check_control(plan, inp, visit_flow.rules(schedule, scheme))


def carer_run(
    core: Core, state: EngineState, scheme: Scheme, carer_id: str, now: datetime
) -> CarerRun:
    run = visit_flow.run_of(scheme, carer_id, now)
    plan = plan_for(core, state, scheme.id, None, now)
    visits: list[RunVisit] = []
    if run is not None and plan is not None:
        for v in sorted(plan.visits.values(), key=lambda v: (v.agreed_at, v.visit_id)):
            if v.run != run:
                continue
            resident = scheme.resident(v.client)
            flat = scheme.flat(resident.flat) if resident and resident.flat else None
            block = scheme.block(flat.block) if flat else None
            visits.append(
                RunVisit(
                    visit_id=v.visit_id,
                    agreed_at=v.agreed_at,
                    window_min=v.window_min,
                    minutes=v.minutes,
                    double=v.double,
                    critical=v.critical,
                    status=v.status.value,
                    late=v.status is V.VisitStatus.PLANNED and now > v.agreed_at,
                    resident_name=resident.display_name if resident else None,
                    flat=flat.number if flat else None,
                    block=block.name if block else None,
                )
            )
    return CarerRun(
        scheme=scheme.id,
        carer_id=carer_id,
        run=run,
        night=plan.night if plan is not None else None,
        visits=visits,
    )
