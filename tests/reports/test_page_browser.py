"""The report page in real headless Chromium (Debian's ``chromium``, driven by Playwright; no
browser is downloaded) for a night of the Hazelhurst Court simulator's data: every chart is
drawn with data, and a screenshot is saved under artifacts/."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, sync_playwright

from api_models import Role
from simulator.runner import RunOptions, run
from simulator.scenario import load_scenario
from tests.conftest import REPO, GatewayEnv, Services, wait_for
from tests.e2e.conftest import sim_broker  # noqa: F401 - the scenarios' own broker

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "artifacts"
CHARTS = {"distribution", "weekly-trend", "within-target", "night-day"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
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


def _accepted(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM alarm_events WHERE step = 'accepted'").fetchone()
        return int(row[0]) if row else 0


def test_report_page_draws_every_chart_for_a_simulated_night(
    services: Services,
    sim_broker: int,  # noqa: F811
    database: str,
    gateway: GatewayEnv,
    browser: Browser,
) -> None:
    # A night of Hazelhurst Court (23:00 on 24 November 2026 to 07:00), recorded by a gateway
    # the simulator spawns. The verdict is the scenario tests' business; here the record is.
    scn = load_scenario("hazelhurst-night")
    opts = RunOptions(dsn=database, mqtt_host="127.0.0.1", mqtt_port=sim_broker, speed=400)
    # In a thread of its own: Playwright's sync API holds an event loop in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run, scn, opts).result(timeout=600)
    assert _accepted(database) > 0, "the simulated night recorded no accepted alarm"

    # A gateway of our own on that database serves the page.
    gateway.process.start()
    commissioner = gateway.process.api(Role.COMMISSIONER)
    token = commissioner.headers["Authorization"].removeprefix("Bearer ")
    query = "period=custom&on=2026-11-24&days=2"
    wait_for(lambda: commissioner.get(f"/reports?{query}").status_code == 200, 30, what="the page")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "telecare_session", "value": token, "url": gateway.process.url}])
    page = context.new_page()
    try:
        response = page.goto(f"{gateway.process.url}/reports?{query}")
        assert response is not None and response.status == 200
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "reports-page.png"), full_page=True)
        drawn = page.eval_on_selector_all(
            "svg.chart",
            """els => els.map(e => ({
                name: e.dataset.chart,
                points: Number(e.dataset.points),
                marks: e.querySelectorAll('.datum').length,
                width: e.getBoundingClientRect().width,
                visible: [...e.querySelectorAll('.datum')]
                    .filter(d => d.getBoundingClientRect().height > 0).length,
            }))""",
        )
    finally:
        context.close()
    assert {c["name"] for c in drawn} == CHARTS
    empty = [c for c in drawn if c["points"] == 0 or c["marks"] == 0 or c["visible"] == 0]
    assert not empty, f"empty charts: {empty}"
    assert all(c["width"] > 200 for c in drawn), drawn
