"""The gateway's HTTP side: health, readiness, Prometheus metrics and the read API."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Response
from fastapi.responses import StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from gateway.carer_api import create_router
from gateway.engine import routing
from gateway.engine.model import Alarm, CarerStatus, to_json

if TYPE_CHECKING:
    from gateway.service import Gateway

Limit = Annotated[int, Query(ge=1, le=1000, description="Rows to return, newest first.")]


def create_app(gw: Gateway) -> FastAPI:
    app = FastAPI(title="Telecare gateway", version="0.1.0")

    def control(authorization: Annotated[str | None, Header()] = None) -> None:
        """Control-room changes need the bearer token when one is configured."""
        token = gw.settings.http.control_token
        if token is None:
            return
        expected = f"Bearer {token.get_secret_value()}"
        if authorization is None or not hmac.compare_digest(authorization, expected):
            raise HTTPException(401, "control-room token required (Authorization: Bearer ...)")

    app.include_router(create_router(gw))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive and its loops are running."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        """Ready to take events: journal open and broker session up. The database is reported
        but does not decide readiness: events are safe in the journal while it is away."""
        shipping = gw.shipper.status()
        body = {
            "journal": gw.journal_open,
            "engine": gw.engine.ready,
            "mqtt": gw.ingest.connected,
            "database": shipping.database_up,
            "database_error": shipping.database_error,
            # Per stream: lag, quarantined rows, last error (a refused row is not an outage).
            "shipping": shipping.model_dump(mode="json")["streams"],
        }
        ready = gw.journal_open and gw.ingest.connected and gw.engine.ready
        body["ready"] = ready
        if not ready:
            response.status_code = 503
        return body

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/alerts/stream")
    async def alert_stream(scheme: str | None = None) -> StreamingResponse:
        """Server-sent events: control-room alerts as they happen (all schemes by default)."""
        if scheme is not None and scheme not in gw.registry.schemes:
            raise HTTPException(404, f"scheme {scheme!r} is not served by this gateway")
        key = f"control/{scheme}" if scheme else "control/*"
        return StreamingResponse(gw.engine.hub.sse(key, "alert"), media_type="text/event-stream")

    @app.get("/api/v1/clock")
    async def clock() -> dict[str, Any]:
        """The gateway's scheme clock, so a simulator or handset can share it exactly."""
        c = gw.clock
        return {
            "now": c.now(),
            "speed": c.speed,
            "anchor_real": c.anchor_real,
            "anchor_scheme": c.anchor_scheme,
        }

    @app.get("/api/v1/ingest")
    async def ingest_stats() -> dict[str, Any]:
        """Journal heads, what has been shipped, and the schemes served."""
        heads = {s: gw.journal.head(s) for s in ("records", "dead_letters")}
        return {
            "gateway_id": gw.settings.gateway_id,
            "journal_epoch": gw.journal.epoch,
            "journal_head": heads,
            "shipped": dict(gw.shipper.shipped),
            "shipping": gw.shipper.status().model_dump(mode="json"),
            "schemes": sorted(gw.registry.schemes),
        }

    async def query(sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        try:
            async with await psycopg.AsyncConnection.connect(
                gw.settings.db.dsn.get_secret_value(), connect_timeout=3, row_factory=dict_row
            ) as conn:
                cur = await conn.execute(sql, args)
                return await cur.fetchall()
        except psycopg.OperationalError as exc:
            raise HTTPException(503, f"database unavailable: {str(exc).splitlines()[0]}") from exc

    @app.get("/api/v1/events")
    async def events(limit: Limit = 50, scheme: str | None = None) -> list[dict[str, Any]]:
        """Recent device events this gateway recorded in TimescaleDB (the system of record)."""
        if scheme is not None and scheme not in gw.registry.schemes:
            raise HTTPException(404, f"scheme {scheme!r} is not served by this gateway")
        return await query(
            "SELECT received_at, occurred_at, event_id, scheme, device_id, kind, location,"
            " battery_pct FROM device_events WHERE gateway_id = %s"
            " AND (%s::text IS NULL OR scheme = %s) ORDER BY received_at DESC LIMIT %s",
            (gw.settings.gateway_id, scheme, scheme, limit),
        )

    @app.get("/api/v1/dead-letters")
    async def dead_letters(limit: Limit = 50) -> list[dict[str, Any]]:
        """Recent dead letters with their reasons (payloads are not returned)."""
        return await query(
            "SELECT received_at, topic, scheme, reason, detail, payload_size FROM dead_letters"
            " WHERE gateway_id = %s ORDER BY received_at DESC LIMIT %s",
            (gw.settings.gateway_id, limit),
        )

    @app.get("/api/v1/alarms")
    async def alarms(
        open_only: Annotated[bool, Query(alias="open")] = True,
    ) -> list[dict[str, Any]]:
        """Alarms held by the engine now (live, from memory), most urgent and oldest first."""
        rows = [a for a in gw.engine.state.alarms.values() if a.is_open or not open_only]
        rows.sort(key=lambda a: (a.priority.value, a.opened_at))
        return [alarm_view(a) for a in rows]

    @app.get("/api/v1/alarms/{alarm_id}")
    async def alarm_detail(alarm_id: str) -> dict[str, Any]:
        """One alarm: live state, its timeline and every routing decision (from TimescaleDB)."""
        a = gw.engine.state.alarms.get(alarm_id)
        try:
            timeline = await query(
                "SELECT at, step, priority, carer_id, occurred_at, received_at, detail"
                " FROM alarm_events WHERE alarm_id = %s::uuid ORDER BY at, journal_seq",
                (alarm_id,),
            )
            decisions = await query(
                "SELECT at, record FROM alarm_decisions WHERE alarm_id = %s::uuid"
                " ORDER BY at, journal_seq",
                (alarm_id,),
            )
        except psycopg.errors.InvalidTextRepresentation as exc:
            raise HTTPException(422, f"not an alarm id: {alarm_id!r}") from exc
        if a is None and not timeline:
            raise HTTPException(404, f"no alarm {alarm_id!r}")
        return {
            "alarm": alarm_view(a) if a else None,
            "timeline": timeline,
            "decisions": decisions,
        }

    @app.get("/api/v1/carers")
    async def carers() -> list[dict[str, Any]]:
        """Every carer with presence, status, what they are busy with and whether routable."""
        now = gw.clock.now()
        out = []
        for _key, c in sorted(gw.engine.state.carers.items()):
            scheme = gw.registry.schemes.get(c.scheme)
            if scheme is None:
                continue
            ok, why = routing.routable(scheme, c, now, gw.settings.engine.handset_timeout_s)
            roles = routing.on_shift_roles(scheme, c.carer_id, now)
            out.append(
                {
                    "scheme": c.scheme,
                    "carer_id": c.carer_id,
                    "display_name": getattr(scheme.carer(c.carer_id), "display_name", c.carer_id),
                    "on_shift": sorted(r.value for r in roles),
                    "logged_in": c.logged_in,
                    "status": c.status.value,
                    "handset_seen": c.handset_seen,
                    "position": to_json(c.position),
                    "busy_with": c.busy_with,
                    "routable": ok,
                    "reason": why,
                }
            )
        return out

    @app.post(
        "/api/v1/carers/{scheme}/{carer_id}/status",
        status_code=202,
        dependencies=[Depends(control)],
    )
    async def set_carer_status(scheme: str, carer_id: str, body: CarerStatusIn) -> dict[str, str]:
        """Control room override: mark a carer on break, unavailable, or available again."""
        s = gw.registry.schemes.get(scheme)
        if s is None or s.carer(carer_id) is None:
            raise HTTPException(404, f"no carer {carer_id!r} in scheme {scheme!r}")
        await gw.submit_control(
            scheme, {"op": "carer_status", "carer_id": carer_id, "status": body.status.value}
        )
        return {"status": "accepted"}

    @app.post(
        "/api/v1/devices/{scheme}/{device_id}/maintenance",
        status_code=202,
        dependencies=[Depends(control)],
    )
    async def set_maintenance(scheme: str, device_id: str, body: MaintenanceIn) -> dict[str, Any]:
        """Put a device in test/maintenance mode (it will not page) for some minutes; 0 ends it."""
        s = gw.registry.schemes.get(scheme)
        if s is None or s.device(device_id) is None:
            raise HTTPException(404, f"no device {device_id!r} in scheme {scheme!r}")
        minutes = body.minutes
        if minutes is None:
            minutes = gw.engine.core._policy(scheme).maintenance_default_s // 60
        until = gw.clock.now() + timedelta(minutes=minutes) if minutes else None
        await gw.submit_control(
            scheme,
            {
                "op": "device_mode",
                "device_id": device_id,
                "until": until.isoformat() if until else None,
            },
        )
        return {"status": "accepted", "until": until}

    return app


class CarerStatusIn(BaseModel):
    status: CarerStatus


class MaintenanceIn(BaseModel):
    minutes: int | None = Field(
        default=None, ge=0, le=7 * 24 * 60, description="0 ends it; default: the policy's."
    )


def alarm_view(a: Alarm) -> dict[str, Any]:
    out: dict[str, Any] = to_json(a)
    out.pop("chain", None)
    out.pop("event_ids", None)
    return out
