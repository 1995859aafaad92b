"""The development docker-compose stack agrees with the gateway's default settings.

Reads the files only; no container, broker or database is needed. The one check that
needs the ``docker compose`` plugin is skipped where it is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
SERVICES = {"mosquitto", "timescaledb", "gateway", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The gateway's built-in defaults, whatever TELECARE_* the test run inherited."""
    for name in list(os.environ):
        if name.upper().startswith("TELECARE_"):
            monkeypatch.delenv(name)
    return Settings()


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host_ip, host_port, container_port) for each published port of a service."""
    result = []
    for port in service.get("ports", []):
        if isinstance(port, dict):  # long syntax
            result.append(
                (str(port.get("host_ip", "")), int(port["published"]), int(port["target"]))
            )
            continue
        spec = str(port).split("/", 1)[0]  # drop "/tcp"
        parts = spec.split(":")
        if len(parts) == 3:
            host_ip, host_port, container_port = parts
        elif len(parts) == 2:
            host_ip, (host_port, container_port) = "", parts
        else:
            raise AssertionError(f"port {port!r} does not publish a host port")
        result.append((host_ip, int(host_port), int(container_port)))
    return result


def _only_port(compose: dict[str, Any], name: str) -> tuple[str, int, int]:
    ports = _published(compose["services"][name])
    assert len(ports) == 1, f"{name}: expected exactly one published port, got {ports}"
    return ports[0]


def test_all_services_present_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= SERVICES
    for name in SERVICES:
        healthcheck = services[name].get("healthcheck")
        assert healthcheck and healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_ports_bind_loopback_only(compose: dict[str, Any], name: str) -> None:
    for host_ip, _, _ in _published(compose["services"][name]):
        assert host_ip == "127.0.0.1", f"{name} publishes on {host_ip or 'all interfaces'}"


def test_published_ports_match_gateway_defaults(
    compose: dict[str, Any], defaults: Settings
) -> None:
    dsn_port = urlsplit(defaults.db.dsn.get_secret_value()).port
    assert _only_port(compose, "mosquitto")[1] == defaults.mqtt.port
    assert _only_port(compose, "timescaledb")[1] == dsn_port
    assert _only_port(compose, "gateway")[1] == defaults.http.port


def test_gateway_environment_points_at_services(compose: dict[str, Any]) -> None:
    env = _environment(compose["services"]["gateway"])
    _, _, mqtt_port = _only_port(compose, "mosquitto")
    _, _, db_port = _only_port(compose, "timescaledb")
    _, _, http_port = _only_port(compose, "gateway")

    assert env["TELECARE_MQTT__HOST"] == "mosquitto"
    assert int(env.get("TELECARE_MQTT__PORT", "0")) == mqtt_port

    dsn = urlsplit(env["TELECARE_DB__DSN"])
    assert dsn.hostname == "timescaledb"
    assert dsn.port == db_port

    # Reachable from the host port mapping, i.e. not bound to the container's loopback.
    assert env["TELECARE_HTTP__HOST"] == "0.0.0.0"
    assert int(env.get("TELECARE_HTTP__PORT", "0")) == http_port


def test_gateway_depends_on_healthy_broker_and_database(compose: dict[str, Any]) -> None:
    depends = compose["services"]["gateway"]["depends_on"]
    for name in ("mosquitto", "timescaledb"):
        assert depends[name]["condition"] == "service_healthy"


def test_gateway_journal_is_on_a_named_volume(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    journal = PurePosixPath(_environment(gateway)["TELECARE_JOURNAL__PATH"])
    named = set(compose.get("volumes") or {})
    targets = []
    for volume in gateway.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume.get("source"), volume["target"]
        else:
            source, target = str(volume).split(":")[:2]
        if source in named:
            targets.append(PurePosixPath(target))
    assert any(journal.is_relative_to(target) for target in targets), (
        f"journal {journal} is not on a named volume (mounted: {targets})"
    )


def test_bind_mounted_files_exist(compose: dict[str, Any]) -> None:
    """A missing bind source would silently become an empty directory in the container."""
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_prometheus_scrapes_gateway_port(compose: dict[str, Any], defaults: Settings) -> None:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8"))
    _, _, http_port = _only_port(compose, "gateway")
    assert http_port == defaults.http.port

    targets = [
        (job, target)
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    ]
    gateway_jobs = [job for job, target in targets if target == f"gateway:{http_port}"]
    assert gateway_jobs, f"no scrape target gateway:{http_port} in {PROMETHEUS_FILE.name}"
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in gateway_jobs)


def test_grafana_dashboards_parse_and_use_provisioned_datasource() -> None:
    datasources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text("utf-8")
    )
    uids = {source["uid"] for source in datasources["datasources"]}
    dashboards = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"


def test_docker_compose_config_is_valid() -> None:
    try:
        version = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("docker compose plugin not installed")
    if version.returncode != 0:
        pytest.skip("docker compose plugin not installed")

    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
