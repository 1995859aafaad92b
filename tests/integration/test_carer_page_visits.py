"""The carer page's run of planned visits, in real headless Chromium against a real gateway on
the Thurrock example: the carer sees their run's visits in order, checks in and out with a tap,
and the status follows from the engine (``visit_result`` on the stream, then the run again)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from api_models import Role
from devices.scheme import load_scheme
from devices.visits import load_schedule, schedule_beside
from tests.conftest import REPO, GatewayEnv
from tests.integration.test_carer_page import browser  # noqa: F401 - the shared fixture
from tests.integration.test_visits_gateway import START, THURROCK

pytestmark = pytest.mark.integration

SCHEME = "thurrock-ooh"
CARER = "ooh-01"
_PLAN = load_schedule(schedule_beside(THURROCK), load_scheme(THURROCK))
RUN_1 = sum(len(r.visits) for r in _PLAN.runs if r.run == "run-1")


@pytest.fixture
def thurrock(gateway: GatewayEnv) -> Iterator[GatewayEnv]:
    gateway.process.env.update(
        {
            "TELECARE_SCHEMES": f'["{THURROCK}"]',
            "TELECARE_CLOCK__SPEED": "1",
            "TELECARE_CLOCK__START": START.isoformat(),
            "TELECARE_CLOCK__ANCHOR": str(time.time()),
            "TELECARE_ENGINE__TICK_S": "5",
        }
    )
    gateway.process.start()
    yield gateway


def test_the_carer_checks_in_and_out_of_a_visit_on_the_page(
    browser: Browser,  # noqa: F811 - the fixture imported above
    thurrock: GatewayEnv,
) -> None:
    token = thurrock.process.account(Role.CARER, (SCHEME, CARER)).password
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, locale="en-GB"
    )
    context.add_init_script(f"window.__carerConfig = {json.dumps({'heartbeatMs': 3000})};")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{thurrock.process.url}/carer")
        page.fill("#scheme", SCHEME)
        page.fill("#carer", CARER)
        page.fill("#token", token)
        page.click("#signin-btn")
        expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=20_000)
        visits = page.get_by_test_id("visit")
        expect(visits).to_have_count(RUN_1, timeout=20_000)  # run-1's visits, in order
        expect(page.locator("#run-name")).to_have_text("(run-1)")
        first = page.locator('[data-testid="visit"][data-visit="r1-01"]')
        expect(first.get_by_test_id("visit-status")).to_have_text("Planned")
        first.get_by_role("button", name="Check in").click()
        expect(first).to_have_attribute("data-status", "checked_in", timeout=20_000)
        first.get_by_role("button", name="Check out").click()
        expect(first).to_have_attribute("data-status", "checked_out", timeout=20_000)
        expect(first.get_by_test_id("visit-status")).to_have_text("Done")
        page.screenshot(path=str(REPO / "artifacts" / "carer-run.png"))
    finally:
        context.close()
    assert errors == [], f"script errors on the page: {errors}"
