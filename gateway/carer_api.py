"""The carer web page's API under ``/carer``: sign-in, live dispatch (SSE), actions, presence.

A carer signs in with their scheme, carer id and token (``telecare carers issue-tokens``); the
page then holds an HttpOnly cookie and sees only their own offers and alarms. Actions and
presence go through the same journal and engine as the MQTT handset protocol, so a page and a
handset are interchangeable and every tap is on record.
"""

import asyncio
import uuid
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Cookie, Depends, HTTPException, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from devices.decoders import Decoded
from devices.records import RECORDS, RecordType
from gateway.engine import routing
from gateway.engine.core import SLEEP_IN_DISTURBANCE_LIMIT, night_of
from gateway.engine.model import Offer
from gateway.journal import Incoming
from responders.credentials import CredentialStore
from responders.protocol import Action, HandsetAction, HandsetPresence, OutcomeCode, PresenceKind

if TYPE_CHECKING:
    from gateway.service import Gateway

COOKIE = "telecare_carer"


class LoginIn(BaseModel):
    scheme: str = Field(min_length=1, max_length=64)
    carer_id: str = Field(min_length=1, max_length=64)
    token: str = Field(min_length=4, max_length=200, description="Issued token or PIN.")


class ActionBody(BaseModel):
    action_id: uuid.UUID | None = Field(
        default=None, description="Chosen by the page so a retry is recognised as the same tap."
    )
    action: Action
    alarm_id: str = Field(min_length=1, max_length=64)
    offer_id: str | None = Field(default=None, max_length=80)
    outcome: OutcomeCode | None = None
    note: str = Field(default="", max_length=1000)


class PresenceBody(BaseModel):
    what: PresenceKind
    flat: str | None = Field(default=None, max_length=32)


def create_router(gw: "Gateway") -> APIRouter:
    router = APIRouter(prefix="/carer")
    store = {"creds": CredentialStore.load(gw.settings.carer_auth.file)}

    def who(telecare_carer: Annotated[str | None, Cookie()] = None) -> tuple[str, str]:
        if not telecare_carer or ":" not in telecare_carer:
            raise HTTPException(401, "sign in first")
        ident, token = telecare_carer.rsplit(":", 1)
        scheme, _, carer_id = ident.partition("/")
        if scheme not in gw.registry.schemes or not store["creds"].verify(scheme, carer_id, token):
            raise HTTPException(401, "your sign-in is no longer valid; sign in again")
        return scheme, carer_id

    Me = Annotated[tuple[str, str], Depends(who)]

    async def journal(scheme: str, rec_type: RecordType, key: str, body: dict[str, Any]) -> None:
        now = gw.clock.now()
        record = RECORDS.validate_python({**body, "record_type": rec_type})
        item = Incoming(
            f"web/{scheme}/carer", now, records=[Decoded(rec_type, scheme, key, record)]
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(gw.writer, gw.journal.commit, [item])
        gw.engine.wake.set()

    async def presence(scheme: str, carer_id: str, what: PresenceKind, flat: str | None) -> None:
        msg = HandsetPresence(presence_id=uuid.uuid4(), what=what, at=gw.clock.now(), flat=flat)
        body = {**msg.model_dump(mode="json"), "carer_id": carer_id}
        await journal(scheme, RecordType.PRESENCE, f"{scheme}/{carer_id}/{msg.presence_id}", body)

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files("responders.web").joinpath("carer.html").read_text()

    @router.post("/api/login")
    async def login(body: LoginIn, response: Response) -> dict[str, Any]:
        """Sign in (checks the token) and start the shift on this device."""
        store["creds"] = CredentialStore.load(gw.settings.carer_auth.file)  # pick up new tokens
        scheme = gw.registry.schemes.get(body.scheme)
        if scheme is None or scheme.carer(body.carer_id) is None:
            raise HTTPException(401, "unknown scheme or carer id")
        if not store["creds"].verify(body.scheme, body.carer_id, body.token):
            raise HTTPException(401, "wrong token")
        response.set_cookie(
            COOKIE,
            f"{body.scheme}/{body.carer_id}:{body.token}",
            httponly=True,
            samesite="strict",
            secure=gw.settings.carer_auth.cookie_secure,
            path="/carer",
        )
        await presence(body.scheme, body.carer_id, PresenceKind.LOGIN, None)
        carer = scheme.carer(body.carer_id)
        return {
            "scheme": body.scheme,
            "carer_id": body.carer_id,
            "display_name": carer.display_name if carer else body.carer_id,
        }

    @router.post("/api/logout")
    async def logout(me: Me, response: Response) -> dict[str, str]:
        await presence(me[0], me[1], PresenceKind.LOGOUT, None)
        response.delete_cookie(COOKIE, path="/carer")
        return {"status": "signed out"}

    @router.post("/api/presence", status_code=202)
    async def post_presence(me: Me, body: PresenceBody) -> dict[str, str]:
        """Heartbeat (the page sends one every 30 s) or a check-in at a flat."""
        if body.flat is not None:
            scheme = gw.registry.schemes[me[0]]
            if scheme.flat(body.flat) is None:
                raise HTTPException(422, f"no flat {body.flat!r} in {me[0]}")
        await presence(me[0], me[1], body.what, body.flat)
        return {"status": "accepted"}

    @router.post("/api/actions", status_code=202)
    async def post_action(me: Me, body: ActionBody) -> dict[str, str]:
        """Accept, decline, arrived or resolved; the result arrives on the stream."""
        try:
            fields = body.model_dump(exclude_none=True, exclude={"action_id"})
            msg = HandsetAction(
                action_id=body.action_id or uuid.uuid4(), at=gw.clock.now(), **fields
            )
        except ValidationError as exc:
            raise HTTPException(422, exc.errors()[0]["msg"]) from exc
        data = {**msg.model_dump(mode="json"), "carer_id": me[1]}
        await journal(me[0], RecordType.ACTION, f"{me[0]}/{me[1]}/{msg.action_id}", data)
        return {"action_id": str(msg.action_id)}

    @router.get("/api/state")
    async def state(me: Me) -> dict[str, Any]:
        """Everything this carer should see now: live offers and alarms they hold."""
        scheme_id, cid = me
        scheme = gw.registry.schemes[scheme_id]
        st = gw.engine.state
        now = gw.clock.now()
        offers = []
        alarms = []
        for a in st.alarms.values():
            if a.scheme != scheme_id or not a.is_open:
                continue
            for o in a.offers:
                if o.carer_id == cid:
                    offers.append({"type": "offer", **gw.engine.core.offer_payload(scheme, a, o)})
            if cid in a.accepted_by:
                held = Offer(f"{a.alarm_id}.held", cid, a.last_at, "held")
                alarms.append(
                    {
                        **gw.engine.core.offer_payload(scheme, a, held),
                        "state": a.state.value,
                        "arrived": cid in a.arrived_by,
                    }
                )
        c = st.carers.get(routing.carer_key(scheme_id, cid))
        night = night_of(now.astimezone(scheme.tz))
        disturbed = st.disturbances.get(f"{scheme_id}/{cid}/{night}", 0)
        carer = scheme.carer(cid)
        return {
            "carer_id": cid,
            "display_name": carer.display_name if carer else cid,
            "scheme": scheme_id,
            "now": now,
            "logged_in": bool(c and c.logged_in),
            "on_shift": sorted(r.value for r in routing.on_shift_roles(scheme, cid, now)),
            "offers": offers,
            "alarms": alarms,
            "disturbances_tonight": disturbed,
            "waking_night": disturbed > SLEEP_IN_DISTURBANCE_LIMIT,
        }

    @router.get("/api/stream")
    async def stream(me: Me) -> StreamingResponse:
        """Server-sent events: this carer's dispatch messages as they happen."""
        key = f"{me[0]}/{me[1]}"
        return StreamingResponse(
            gw.engine.hub.sse(key, "dispatch"),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router
