"""The carer web page in real headless Chromium (Debian's ``chromium``, driven by Playwright
for Python through ``executable_path``) against a real gateway process on a fast night clock,
real Mosquitto and TimescaleDB.

A carer signs in, checks in at a flat, receives a live offer (screenshot in
``artifacts/carer-offer.png``), reloads without seeing it twice, accepts, marks arrived and
resolves; the lifecycle in TimescaleDB carries every timestamp. A second test loses the
connection (gateway stopped, stream blocked), sees the banner, and catches up on reconnect
with an offer made while it was away, shown once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api_models import Role
from devices.events import DeviceEvent, EventKind
from devices.topics import TopicLayout
from tests.conftest import REPO, GatewayEnv, Services, wait_for
from tests.engine_helpers import HZC, NIGHT, device_in
from tests.mqtt_helpers import Recorder

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-quic",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "artifacts"
SPEED = 5.0  # scheme seconds per real second
CARER = "cw-01"  # Abena Corrigan-Hale, waking night in Block A (23:00-07:00)
CARER_NAME = "Abena Corrigan-Hale"
# The page's timers are real time; at speed 5 the default 30 s heartbeat would be 150 scheme
# seconds, past the engine's 120 s silent-handset timeout, so the test beats every 3 s.
PAGE_CONFIG: dict[str, int] = {"heartbeatMs": 3000}
UI_TIMEOUT_MS = 20_000
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, installed by ``scripts/browser.sh ensure`` when missing."""
    if not CHROMIUM.exists():
        subprocess.run(
            ["bash", str(REPO / "scripts" / "browser.sh"), "ensure"], check=True, timeout=900
        )
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


class CarerNight:
    """A gateway on scheme time at 02:14 on a winter night, with a sign-in token for cw-01."""

    def __init__(self, services: Services, gw: GatewayEnv, tmp_path: Path) -> None:
        self.gw = gw
        self.anchor = time.time()
        self.token = gw.process.account(Role.CARER, (HZC.id, CARER)).password
        gw.process.env.update(
            {
                "TELECARE_CLOCK__SPEED": str(SPEED),
                "TELECARE_CLOCK__START": NIGHT.isoformat(),
                "TELECARE_CLOCK__ANCHOR": str(self.anchor),
                "TELECARE_ENGINE__TICK_S": "5",
                # 600 scheme s = 120 s real: the offer stays live while the test works the page.
                "TELECARE_ENGINE__OFFER_TIMEOUT_S": "600",
            }
        )
        self.layout = TopicLayout(gw.topic_root, gw.zigbee_root)
        self.rec = Recorder(
            services.mqtt_host,
            services.mqtt_port,
            [f"{gw.topic_root}/{HZC.id}/carers/+/dispatch"],
        )

    def now(self) -> datetime:
        return NIGHT + (datetime.now(UTC) - datetime.fromtimestamp(self.anchor, UTC)) * SPEED

    def press(self, flat: str) -> None:
        device = device_in(flat)
        ev = DeviceEvent(
            event_id=uuid.uuid4(),
            device_id=device,
            kind=EventKind.PENDANT_PRESS,
            occurred_at=self.now(),
        )
        self.rec.publish(self.layout.device_events(HZC.id, device), ev.model_dump(mode="json"))

    def dispatch(self, typ: str, timeout: float = 20, **match: object) -> dict[str, Any]:
        return self.rec.wait_dispatch(CARER, typ, timeout, **match)

    def dispatched(self, typ: str, **match: object) -> list[dict[str, Any]]:
        return self.rec.dispatched(CARER, typ, **match)

    def close(self) -> None:
        self.rec.close()


@pytest.fixture
def site(services: Services, gateway: GatewayEnv, tmp_path: Path) -> Iterator[CarerNight]:
    n = CarerNight(services, gateway, tmp_path)
    gateway.process.start()
    try:
        yield n
    finally:
        n.close()


class Phone:
    """One phone-sized browser context with the carer page open."""

    def __init__(self, browser: Browser, base_url: str, config: dict[str, int]) -> None:
        self.context = browser.new_context(
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="en-GB",
            timezone_id="Europe/London",
        )
        self.context.add_init_script(f"window.__carerConfig = {json.dumps(config)};")
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(UI_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.url = f"{base_url}/carer"

    def sign_in(self, token: str) -> None:
        p = self.page
        p.goto(self.url)
        expect(p.locator("#signin")).to_be_visible()
        p.fill("#scheme", HZC.id)
        p.fill("#carer", CARER)
        p.fill("#token", token)
        p.click("#signin-btn")
        expect(p.locator("#who")).to_have_text(CARER_NAME)
        expect(p.locator("#shift")).to_have_text("Waking night shift")
        self.wait_live()

    def wait_live(self) -> None:
        expect(self.page.locator("body")).to_have_attribute("data-conn", "live")
        expect(self.page.locator("#banner")).to_be_hidden()

    def syncs(self) -> int:
        return int(self.page.locator("body").get_attribute("data-syncs") or 0)

    def wait_syncs(self, at_least: int) -> None:
        self.page.wait_for_function(
            f"Number(document.body.dataset.syncs) >= {at_least}", timeout=UI_TIMEOUT_MS
        )

    def check_in(self, flat: str) -> None:
        self.page.fill("#checkin-flat", flat)
        self.page.click("#checkin-btn")
        expect(
            self.page.get_by_test_id("toast").filter(has_text=f"Checked in at {flat}")
        ).to_be_visible()

    def cards(self) -> Any:
        return self.page.get_by_test_id("alarm-card")

    def card(self, alarm_id: str) -> Any:
        return self.page.locator(f'[data-testid="alarm-card"][data-alarm-id="{alarm_id}"]')

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def phone(browser: Browser, site: CarerNight, gateway: GatewayEnv) -> Iterator[Phone]:
    ph = Phone(browser, gateway.process.url, PAGE_CONFIG)
    yield ph
    ph.close()
    assert ph.errors == [], f"script errors on the page: {ph.errors}"


def rows(dsn: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def test_sign_in_live_offer_accept_arrive_resolve(
    site: CarerNight, gateway: GatewayEnv, phone: Phone
) -> None:
    page = phone.page
    phone.sign_in(site.token)
    # Only the scheme and carer id are remembered on the device, never the token.
    stored = page.evaluate("JSON.stringify(Object.assign({}, window.localStorage))")
    assert site.token not in stored and HZC.id in stored and CARER in stored
    phone.check_in("A-012")  # cw-01 is at the flat next door

    site.press("A-013")
    offer = site.dispatch("offer")
    alarm_id = str(offer["alarm_id"])
    card = phone.card(alarm_id)
    expect(card).to_be_visible()
    expect(card.get_by_test_id("resident")).to_have_text("Hyacinth Varga-Lowe")
    expect(card.get_by_test_id("where")).to_have_text("Flat 13 · Block A · 1st floor")
    expect(card).to_contain_text("P1 · URGENT")
    expect(card).to_contain_text("Pendant pressed")
    expect(card.get_by_test_id("care-note")).to_contain_text("Glaucoma")
    expect(card).to_contain_text("Raised")
    expect(card.get_by_role("button", name="Accept")).to_be_visible()
    expect(card.get_by_role("button", name="Decline")).to_be_visible()
    expect(phone.cards()).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "carer-offer.png"), full_page=True)
    assert "Hyacinth" not in page.evaluate("JSON.stringify(Object.assign({}, localStorage))")

    # A reload mid-offer: the cookie keeps the carer signed in, and the offer (in the state
    # snapshot at start-up and again on the stream's hello) shows exactly once.
    page.reload()
    phone.wait_live()
    phone.wait_syncs(2)
    expect(phone.cards()).to_have_count(1)
    expect(card.get_by_test_id("resident")).to_have_text("Hyacinth Varga-Lowe")

    card.get_by_role("button", name="Accept").click()
    expect(card.get_by_role("button", name="Arrived")).to_be_visible()
    expect(card.get_by_test_id("status")).to_contain_text("on your way to Flat 13")
    card.get_by_role("button", name="Arrived").click()
    expect(card.get_by_role("button", name="Assisted")).to_be_visible()
    expect(card.get_by_role("button", name="Resolve")).to_be_disabled()
    # "Other" needs a note: the page says so before anything is sent.
    card.get_by_role("button", name="Other (add a note)").click()
    card.get_by_role("button", name="Resolve").click()
    expect(card.get_by_test_id("card-error")).to_have_text('Outcome "Other" needs a note.')
    card.get_by_role("button", name="Assisted").click()
    expect(card.get_by_role("button", name="Assisted")).to_have_attribute("aria-pressed", "true")
    card.get_by_role("textbox").fill("Helped back to bed; pendant within reach.")
    card.get_by_role("button", name="Resolve").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "carer-resolve.png"))
    card.get_by_role("button", name="Resolve").click()
    expect(page.get_by_test_id("toast").filter(has_text="Resolved")).to_be_visible()
    expect(phone.cards()).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()

    results = {r["action"]: r for r in site.dispatched("action_result", alarm_id=alarm_id)}
    assert set(results) == {"accept", "arrived", "resolved"}, results
    assert all(r["ok"] for r in results.values()), results
    assert len(site.dispatched("offer", alarm_id=alarm_id)) == 1

    def steps() -> list[tuple[Any, ...]]:
        return rows(
            gateway.dsn,
            "SELECT step, carer_id, at, occurred_at, received_at, detail FROM alarm_events"
            " WHERE alarm_id = %s ORDER BY at, journal_seq",
            alarm_id,
        )

    got = wait_for(
        lambda: (s := steps()) and s[-1][0] == "resolved" and s, 30, what="resolved in db"
    )
    assert [s[0] for s in got] == ["raised", "offered", "accepted", "arrived", "resolved"]
    assert all(s[2] is not None and s[3] is not None and s[4] is not None for s in got), got
    assert [s[1] for s in got[2:]] == [CARER, CARER, CARER]
    assert got[-1][5].get("outcome") == "assisted", got[-1][5]
    # Every tap on the page is on record as the carer's own message, the note included.
    taps = wait_for(
        lambda: (
            (
                r := rows(
                    gateway.dsn,
                    "SELECT body FROM carer_messages WHERE carer_id = %s AND kind = 'action'"
                    " AND body->>'alarm_id' = %s ORDER BY journal_seq",
                    CARER,
                    alarm_id,
                )
            )
            and len(r) >= 3
            and r
        ),
        30,
        what="the page's actions in carer_messages",
    )
    assert [t[0]["action"] for t in taps] == ["accept", "arrived", "resolved"]
    assert taps[0][0]["offer_id"] == offer["offer_id"]
    assert taps[2][0]["outcome"] == "assisted"
    assert taps[2][0]["note"] == "Helped back to bed; pendant within reach."
    assert {t[0]["action_id"] for t in taps} == {r["action_id"] for r in results.values()}
    ats = [s[2] for s in got]
    assert ats == sorted(ats)

    # Signing out ends the shift on this device and forgets the cookie.
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#carer")).to_have_value(CARER)
    expect(page.locator("#token")).to_have_value("")
    assert page.request.get(f"{gateway.process.url}/carer/api/state").status == 401


def test_connection_loss_banner_then_catch_up_without_duplicates(
    browser: Browser, site: CarerNight, gateway: GatewayEnv
) -> None:
    # Short watchdog so the test need not wait 40 s of silence.
    ph = Phone(browser, gateway.process.url, {**PAGE_CONFIG, "stallMs": 4000, "graceMs": 1500})
    try:
        page = ph.page
        ph.sign_in(site.token)
        ph.check_in("A-012")
        banner = page.locator("#banner")

        # The gateway stops answering (SIGSTOP: open sockets stay up but go silent) and new
        # stream connections are refused: the page notices and shows the banner.
        page.route("**/carer/api/stream", lambda route: route.abort())
        assert gateway.process.proc is not None
        pid = gateway.process.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            expect(banner).to_be_visible(timeout=15_000)
            expect(banner).to_have_text("Connection lost — reconnecting…")
            expect(page.locator("#conn")).to_have_text("Offline")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "carer-offline.png"))
        finally:
            os.kill(pid, signal.SIGCONT)

        # While the page is cut off, an alarm is offered to this carer.
        site.press("A-014")
        offer = site.dispatch("offer", timeout=30)
        alarm_id = str(offer["alarm_id"])
        page.wait_for_timeout(1500)
        expect(banner).to_be_visible()
        expect(ph.cards()).to_have_count(0)

        # The network comes back: the banner goes, and the page catches up from the state.
        before = ph.syncs()
        page.unroute("**/carer/api/stream")
        ph.wait_live()
        card = ph.card(alarm_id)
        expect(card.get_by_test_id("resident")).to_have_text("Colin Hollinshead")
        expect(card.get_by_test_id("where")).to_have_text("Flat 14 · Block A · 1st floor")
        expect(ph.cards()).to_have_count(1)
        # More reconnects and snapshots (the short watchdog recycles an idle stream) never
        # show the offer twice.
        ph.wait_syncs(before + 2)
        expect(ph.cards()).to_have_count(1)
        assert card.get_attribute("data-offer-id") == offer["offer_id"]
        assert ph.errors == [], ph.errors
    finally:
        ph.close()
