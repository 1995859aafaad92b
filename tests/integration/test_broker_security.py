"""The production broker set-up, for real: deploy/mosquitto/mosquitto.prod.conf with a CA and
broker certificate made here with openssl, and the password file and ACL that
``telecare devices provision`` writes for Hazelhurst Court. The broker is this module's own,
on a free loopback port; the shared development broker is not touched.

Judged from what clients see: CONNACK and PUBACK reason codes, and which messages reach a
subscriber holding the gateway's credential (which may read every device's events).
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from typer.testing import CliRunner

from devices.events import DeviceEvent, EventKind
from devices.topics import TopicLayout
from gateway.broker_conn import tls_context
from gateway.cli import app
from gateway.config import MqttSettings
from gateway.provision import careline_username, carer_username, device_username
from simulator.gateway_proc import free_port
from tests.conftest import REPO, SCHEME, GatewayEnv, wait_for
from tests.engine_helpers import HZC, NIGHT, device_in, resident_with
from tests.mqtt_helpers import action, presence

pytestmark = pytest.mark.integration

PROD_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.prod.conf"
SERVER_NAME = "broker.telecare.test"  # the only name in the broker's certificate
NOT_AUTHORIZED = 135  # MQTT 5 reason code, in CONNACK and PUBACK


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> None:
    """A throwaway CA and a broker certificate for SERVER_NAME only (no IP address), so a
    client that dials 127.0.0.1 must be told the name to check."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=telecare test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", f"/CN={SERVER_NAME}",
        cwd=d,
    )  # fmt: skip
    (d / "ext.cnf").write_text(
        f"subjectAltName=DNS:{SERVER_NAME}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "ext.cnf",
        cwd=d,
    )  # fmt: skip


def production_conf(d: Path, port: int, state: Path | None = None, mutual: bool = False) -> str:
    """mosquitto.prod.conf with only its host paths, port and log destination changed (and,
    with ``mutual``, its own commented-out client certificate requirement switched on)."""
    state = state or d
    swap = {
        "listener": f"listener {port} 127.0.0.1",
        "certfile": f"certfile {d / 'broker.crt'}",
        "keyfile": f"keyfile {d / 'broker.key'}",
        "cafile": f"cafile {d / 'ca.crt'}",
        "password_file": f"password_file {d / 'telecare.passwd'}",
        "acl_file": f"acl_file {d / 'telecare.acl'}",
        "persistence_location": f"persistence_location {state}/",
        "log_dest": f"log_dest file {state / 'mosquitto.log'}",
    }
    if mutual:
        swap["#require_certificate"] = "require_certificate true"
    seen: set[str] = set()
    out = [f"user {pwd.getpwuid(os.getuid()).pw_name}"]  # no privilege drop: files are ours
    for line in PROD_CONF.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key in swap:
            assert key not in seen, f"mosquitto.prod.conf has two {key} lines"
            seen.add(key)
            line = swap[key]
        out.append(line)
    assert seen == set(swap), f"mosquitto.prod.conf lost {set(swap) - seen}"
    return "\n".join(out) + "\n"


@dataclass
class Broker:
    port: int
    dir: Path
    layout: TopicLayout
    secrets: dict[str, str]

    def tls(self, server_name: str | None = SERVER_NAME) -> MqttSettings:
        return MqttSettings(
            host="127.0.0.1",
            port=self.port,
            tls=True,
            ca_file=self.dir / "ca.crt",
            server_name=server_name,
        )

    def log(self) -> str:
        return (self.dir / "mosquitto.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    d = tmp_path_factory.mktemp("prod-broker")
    make_pki(d)
    tag = uuid.uuid4().hex[:8]
    layout = TopicLayout(f"tb{tag}", f"zb{tag}")
    result = CliRunner().invoke(
        app,
        [
            "devices", "provision", "-s", str(SCHEME),
            "--password-file", str(d / "telecare.passwd"), "--acl-file", str(d / "telecare.acl"),
            "--secrets-file", str(d / "secrets.json"),
            "--topic-root", layout.root, "--zigbee-root", layout.zigbee_root,
            "--gateway-user", "telecare-gateway",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((d / "secrets.json").read_text())
    secrets = {c["username"]: c["password"] for c in doc["credentials"]}
    assert not any(s in result.output for s in secrets.values()), "a secret was printed"
    port = free_port()
    b = Broker(port, d, layout, secrets)
    proc = start_broker(d / "mosquitto.conf", production_conf(d, port), port, b.log)
    yield b
    proc.terminate()
    proc.wait(timeout=20)


def start_broker(
    conf: Path, text: str, port: int, log: Callable[[], str]
) -> subprocess.Popen[bytes]:
    """Mosquitto on ``conf``; returns once it accepts connections on ``port``."""
    conf.write_text(text)
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"broker exited {proc.returncode}: {out}\n{log()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("broker did not open its port")
        time.sleep(0.05)


class Client:
    """A paho client over TLS that records CONNACK, PUBACK reason codes and messages."""

    def __init__(
        self,
        settings: MqttSettings,
        username: str | None = None,
        password: str | None = None,
        protocol: paho.MQTTProtocolVersion = paho.MQTTProtocolVersion.MQTTv5,
        client_id: str | None = None,
    ) -> None:
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"t-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        if username is not None:
            self.c.username_pw_set(username, password)
        ctx = tls_context(settings)
        assert ctx is not None
        self.c.tls_set_context(ctx)
        self.settings = settings
        self.cond = threading.Condition()
        self.connack: ReasonCode | None = None
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.c.on_connect = self._on_connect
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        self.disconnects = 0

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self.cond:
            self.connack = rc
            self.cond.notify_all()

    def _on_publish(self, c: Any, u: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        with self.cond:
            self.acks[mid] = rc
            self.cond.notify_all()

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[ReasonCode], props: Any) -> None:
        with self.cond:
            self.subacks[mid] = rcs
            self.cond.notify_all()

    def _on_disconnect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self.cond:
            self.disconnects += 1
            self.cond.notify_all()

    def _on_message(self, c: Any, u: Any, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.messages.append((msg.topic, json.loads(msg.payload)))
            self.cond.notify_all()

    def _wait(self, pred: Any, what: str, timeout: float = 20) -> Any:
        with self.cond:
            if not self.cond.wait_for(pred, timeout):
                raise AssertionError(f"timed out waiting for {what}; got {self.messages[-10:]}")
            return pred()

    def connect(self) -> ReasonCode:
        self.c.connect(self.settings.host, self.settings.port, keepalive=30)
        self.c.loop_start()
        rc: ReasonCode = self._wait(lambda: self.connack, "CONNACK")
        return rc

    def subscribe(self, *filters: str) -> None:
        _, mid = self.c.subscribe([(f, 1) for f in filters])
        self._wait(lambda: self.subacks.get(mid), f"SUBACK for {filters}")

    def publish(self, topic: str, body: dict[str, Any]) -> ReasonCode:
        """Publish QoS 1 and return the broker's PUBACK reason code."""
        info = self.c.publish(topic, json.dumps(body, default=str), qos=1)
        rc: ReasonCode = self._wait(lambda: self.acks.get(info.mid), f"PUBACK on {topic}")
        return rc

    def wait_message(self, pred: Any, what: str, timeout: float = 30) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((b for t, b in self.messages if pred(t, b)), None)

        body: dict[str, Any] = self._wait(found, what, timeout)
        return body

    def topics(self) -> list[str]:
        with self.cond:
            return [t for t, _ in self.messages]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _event(device: str, at: datetime | None = None) -> dict[str, Any]:
    ev = DeviceEvent(
        event_id=uuid.uuid4(),
        device_id=device,
        kind=EventKind.PENDANT_PRESS,
        occurred_at=at or datetime.now(UTC),
    )
    return ev.model_dump(mode="json")


def test_anonymous_wrong_password_and_wrong_server_name_are_refused(broker: Broker) -> None:
    gw = "telecare-gateway"
    anon = Client(broker.tls())
    try:
        assert anon.connect().value == NOT_AUTHORIZED
    finally:
        anon.close()
    wrong = Client(broker.tls(), gw, broker.secrets[gw] + "x")
    try:
        assert wrong.connect().value == NOT_AUTHORIZED
    finally:
        wrong.close()
    # A device's username with the gateway's secret: secrets belong to one client each.
    pendant = device_username(HZC.id, device_in("A-013"))
    swapped = Client(broker.tls(), pendant, broker.secrets[gw])
    try:
        assert swapped.connect().value == NOT_AUTHORIZED
    finally:
        swapped.close()
    # Dialling 127.0.0.1 without the broker's name: the certificate does not match, so the
    # TLS handshake fails before any credential is sent.
    unnamed = Client(broker.tls(server_name=None), gw, broker.secrets[gw])
    with pytest.raises(ssl.SSLCertVerificationError):
        unnamed.c.connect("127.0.0.1", broker.port)
    right = Client(broker.tls(), gw, broker.secrets[gw])
    try:
        assert right.connect().value == 0, broker.log()
    finally:
        right.close()


@pytest.mark.parametrize(
    "protocol", [paho.MQTTProtocolVersion.MQTTv5, paho.MQTTProtocolVersion.MQTTv311]
)
def test_a_device_cannot_publish_as_another_device(
    broker: Broker, protocol: paho.MQTTProtocolVersion
) -> None:
    L, gw = broker.layout, "telecare-gateway"
    mine, victim = device_in("A-013"), device_in("A-014")
    watcher = Client(broker.tls(), gw, broker.secrets[gw])
    assert watcher.connect().value == 0
    watcher.subscribe(f"{L.root}/+/devices/#", f"{L.root}/+/carers/+/actions")
    user = device_username(HZC.id, mine)
    device = Client(broker.tls(), user, broker.secrets[user], protocol)
    carer = carer_username(HZC.id, "cw-02")
    handset = Client(broker.tls(), carer, broker.secrets[carer], protocol)
    try:
        assert device.connect().value == 0 and handset.connect().value == 0
        forged = _event(victim)
        rc = device.publish(L.device_events(HZC.id, victim), forged)
        forged_action = action("accept", "a-1", datetime.now(UTC), "o-1")
        rc2 = handset.publish(L.carer(HZC.id, "cw-01", "actions"), forged_action)
        if protocol is paho.MQTTProtocolVersion.MQTTv5:
            assert rc.value == NOT_AUTHORIZED and rc2.value == NOT_AUTHORIZED
        # Each client's PUBACK came after the broker had decided on its forged message, so
        # once a genuine message from the same client reaches the watcher, a forged one
        # delivered at all would already be there.
        genuine = _event(mine)
        assert device.publish(L.device_events(HZC.id, mine), genuine).value == 0
        genuine_action = action("decline", "a-2", datetime.now(UTC), "o-2")
        assert handset.publish(L.carer(HZC.id, "cw-02", "actions"), genuine_action).value == 0
        watcher.wait_message(lambda t, b: b.get("event_id") == genuine["event_id"], "genuine")
        watcher.wait_message(
            lambda t, b: b.get("action_id") == genuine_action["action_id"], "genuine action"
        )
        ids = [b.get("event_id") or b.get("action_id") for _, b in watcher.messages]
        assert forged["event_id"] not in ids and forged_action["action_id"] not in ids
        assert L.device_events(HZC.id, victim) not in watcher.topics()
    finally:
        for c in (watcher, device, handset):
            c.close()


def test_no_client_can_take_over_the_gateways_connection(broker: Broker) -> None:
    """A device that connects under the gateway's client id gets its own username as client
    id instead (use_username_as_clientid): the gateway stays connected and keeps hearing."""
    L, gw = broker.layout, "telecare-gateway"
    gateway_client = Client(broker.tls(), gw, broker.secrets[gw], client_id=gw)
    assert gateway_client.connect().value == 0
    gateway_client.subscribe(f"{L.root}/+/devices/+/events")
    pendant = device_in("A-013")
    user = device_username(HZC.id, pendant)
    impostor = Client(broker.tls(), user, broker.secrets[user], client_id=gw)
    try:
        assert impostor.connect().value == 0
        ev = _event(pendant)
        assert impostor.publish(L.device_events(HZC.id, pendant), ev).value == 0
        gateway_client.wait_message(lambda t, b: b.get("event_id") == ev["event_id"], "event")
        assert gateway_client.disconnects == 0, broker.log()
    finally:
        impostor.close()
        gateway_client.close()


def test_gateway_over_tls_serves_handsets_and_careline_on_their_own_credentials(
    broker: Broker, gateway: GatewayEnv
) -> None:
    L, gw = broker.layout, "telecare-gateway"
    anchor = time.time()
    gateway.process.env.update(
        {
            "TELECARE_MQTT__PORT": str(broker.port),
            "TELECARE_MQTT__TLS": "true",
            "TELECARE_MQTT__CA_FILE": str(broker.dir / "ca.crt"),
            "TELECARE_MQTT__SERVER_NAME": SERVER_NAME,
            "TELECARE_MQTT__USERNAME": gw,
            "TELECARE_MQTT__PASSWORD": broker.secrets[gw],
            "TELECARE_MQTT__PUBLISHER_USERNAME": f"{gw}-out",
            "TELECARE_MQTT__PUBLISHER_PASSWORD": broker.secrets[f"{gw}-out"],
            "TELECARE_MQTT__TOPIC_ROOT": L.root,
            "TELECARE_MQTT__ZIGBEE_ROOT": L.zigbee_root,
            # Scheme time runs at real speed from 02:14, when the night carers are on shift.
            "TELECARE_CLOCK__START": NIGHT.isoformat(),
            "TELECARE_CLOCK__ANCHOR": str(anchor),
        }
    )

    def now() -> datetime:
        return NIGHT + (datetime.now(UTC) - datetime.fromtimestamp(anchor, UTC))

    gateway.process.start()
    cw01, cw02 = carer_username(HZC.id, "cw-01"), carer_username(HZC.id, "cw-02")
    pendant = device_in("A-013")
    dev_user = device_username(HZC.id, pendant)
    handset = Client(broker.tls(), cw01, broker.secrets[cw01])
    nosy = Client(broker.tls(), cw02, broker.secrets[cw02])  # on shift, never logged in
    device = Client(broker.tls(), dev_user, broker.secrets[dev_user])
    arc = careline_username(HZC.id)
    careline = Client(broker.tls(), arc, broker.secrets[arc])
    try:
        assert handset.connect().value == 0 and nosy.connect().value == 0
        assert device.connect().value == 0
        handset.subscribe(L.carer(HZC.id, "cw-01", "dispatch"))
        # cw-02 asks for every carer's dispatch; the ACL lets it read only its own.
        nosy.subscribe(L.carer(HZC.id, "+", "dispatch"))
        login = presence("login", now(), flat="A-012")
        assert handset.publish(L.carer(HZC.id, "cw-01", "presence"), login).value == 0
        device.subscribe(L.device_receipts(HZC.id, pendant))
        press = _event(pendant, now())
        assert device.publish(L.device_events(HZC.id, pendant), press).value == 0
        receipt = device.wait_message(
            lambda t, b: b.get("event_id") == press["event_id"], "the pendant's receipt"
        )
        assert receipt["status"] == "accepted", receipt
        offer = handset.wait_message(
            lambda t, b: b.get("type") == "offer" and b.get("flat_id") == "A-013", "the offer"
        )
        alarm_id, offer_id = str(offer["alarm_id"]), str(offer["offer_id"])
        accept = action("accept", alarm_id, now(), offer_id)
        assert handset.publish(L.carer(HZC.id, "cw-01", "actions"), accept).value == 0
        result = handset.wait_message(
            lambda t, b: b.get("type") == "action_result" and b.get("action") == "accept",
            "the gateway's answer to the accept",
        )
        assert result["ok"] is True, result
        # cw-02 tries the same offer: the gateway answers on cw-02's own dispatch topic, after
        # everything it sent cw-01, so by then cw-02 would have heard cw-01's offer if it could.
        steal = action("accept", alarm_id, now(), offer_id)
        assert nosy.publish(L.carer(HZC.id, "cw-02", "actions"), steal).value == 0
        refused = nosy.wait_message(
            lambda t, b: (
                t == L.carer(HZC.id, "cw-02", "dispatch")
                and b.get("type") == "action_result"
                and b.get("alarm_id") == alarm_id
            ),
            "the gateway's answer to cw-02",
        )
        assert refused["ok"] is False
        assert set(nosy.topics()) == {L.carer(HZC.id, "cw-02", "dispatch")}
        # The Careline operator's own credential: a call-out in, its status back out.
        assert careline.connect().value == 0
        careline.subscribe(L.careline_status(HZC.id, "+"))
        callout = {
            "callout_id": "ARC-TLS-1",
            "resident_ref": resident_with("falls").client_ref,
            "reason": "fallen in the hall",
            "priority": "P1",
            "operator": "op-7",
            "requested_at": now().isoformat(),
        }
        assert careline.publish(L.callouts(HZC.id), callout).value == 0
        careline.wait_message(
            lambda t, b: t == L.careline_status(HZC.id, "ARC-TLS-1") and b["status"] == "received",
            "the call-out's received status",
        )
        # The provisioned ACL lets the gateway hear its own fences, without which supervision
        # could never judge a silent device (gateway.fence).
        deadline = time.monotonic() + 20
        while gateway.process.metric("telecare_ingest_fences_total") < 2:
            assert time.monotonic() < deadline, "no fence came back through the provisioned ACL"
            time.sleep(0.2)
    except AssertionError:
        print(gateway.process.log())
        print(broker.log())
        raise
    finally:
        for c in (handset, nosy, device, careline):
            c.close()


def test_mutual_tls_takes_the_gateway_client_certificate(broker: Broker, tmp_path: Path) -> None:
    """The production config's optional client-certificate line, switched on: the gateway's
    TELECARE_MQTT__CLIENT_CERT/__CLIENT_KEY get it in; a client without one is cut off."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-new", *ec, "-keyout", "gw.key", "-out", "gw.csr", "-subj", "/CN=telecare-gateway",
        cwd=tmp_path,
    )  # fmt: skip
    (tmp_path / "client.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    _openssl(
        "x509", "-req", "-in", "gw.csr", "-CA", str(broker.dir / "ca.crt"),
        "-CAkey", str(broker.dir / "ca.key"), "-CAcreateserial", "-out", "gw.crt", "-days", "2",
        "-extfile", "client.cnf",
        cwd=tmp_path,
    )  # fmt: skip
    port = free_port()
    text = production_conf(broker.dir, port, state=tmp_path, mutual=True)
    assert "\nrequire_certificate true\n" in text
    proc = start_broker(
        tmp_path / "mosquitto.conf",
        text,
        port,
        lambda: (tmp_path / "mosquitto.log").read_text(errors="replace")[-3000:],
    )
    gw = "telecare-gateway"
    try:
        with_cert = broker.tls().model_copy(
            update={
                "port": port,
                "client_cert": tmp_path / "gw.crt",
                "client_key": tmp_path / "gw.key",
            }
        )
        ok = Client(with_cert, gw, broker.secrets[gw])
        try:
            assert ok.connect().value == 0
        finally:
            ok.close()
        # Without a certificate the broker ends the TLS session before any MQTT is spoken.
        ctx = tls_context(broker.tls())
        assert ctx is not None
        got = b"unset"
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                ctx.wrap_socket(raw) as tls,
            ):
                got = tls.recv(1)
        except (ssl.SSLError, ConnectionResetError):
            got = b""
        except TimeoutError:
            got = b"still open: the broker waited for MQTT"
        assert got == b"", "a client without a certificate was let in"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _tls_gateway(broker: Broker, gateway: GatewayEnv, **env: str) -> subprocess.Popen[bytes]:
    """``telecare gateway run`` against the production broker, not waiting for readiness."""
    gw = "telecare-gateway"
    full = {
        **gateway.process.env,
        "TELECARE_MQTT__PORT": str(broker.port),
        "TELECARE_MQTT__TLS": "true",
        "TELECARE_MQTT__CA_FILE": str(broker.dir / "ca.crt"),
        "TELECARE_MQTT__SERVER_NAME": SERVER_NAME,
        "TELECARE_MQTT__USERNAME": gw,
        "TELECARE_MQTT__PASSWORD": broker.secrets[gw],
        "TELECARE_MQTT__PUBLISHER_USERNAME": f"{gw}-out",
        "TELECARE_MQTT__PUBLISHER_PASSWORD": broker.secrets[f"{gw}-out"],
        "TELECARE_MQTT__TOPIC_ROOT": broker.layout.root,
        **env,
    }
    full = {k: v for k, v in full.items() if v}  # "" removes a setting
    with gateway.process.log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "gateway", "run"],
            env=full,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("which", ["PASSWORD", "PUBLISHER_PASSWORD"])
def test_gateway_with_a_wrong_secret_refuses_to_start(
    broker: Broker, gateway: GatewayEnv, which: str
) -> None:
    """Either of the gateway's two credentials: a wrong one stops the start, not just the
    connection that uses it (a gateway that hears alarms but cannot page would look ready)."""
    wrong = "not-the-provisioned-secret-" + uuid.uuid4().hex
    proc = _tls_gateway(broker, gateway, **{f"TELECARE_MQTT__{which}": wrong})
    try:
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # Once a start-up hang (a cancel swallowed by psycopg_pool on 3.11 left the audit
            # writer retrying for ever; tests/integration/test_cancel_at_start.py): the stacks
            # go to the failure, the gateway prints them on SIGUSR1.
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            tail = gateway.process.log_path.read_text(errors="replace")[-6000:]
            pytest.fail(f"no refusal within 120 s:\n{tail}")
        assert code == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    out = gateway.process.log_path.read_text(errors="replace")
    [line] = [x for x in out.splitlines() if x.startswith("telecare: refusing to start:")]
    assert "broker" in line.lower() or "mqtt" in line.lower(), line
    assert wrong not in out


def test_gateway_will_not_talk_to_a_broker_it_cannot_verify(
    broker: Broker, gateway: GatewayEnv
) -> None:
    """TLS on, but no server name while dialling 127.0.0.1: the certificate does not match,
    so the gateway never sends its credential and never becomes ready."""
    proc = _tls_gateway(broker, gateway, TELECARE_MQTT__SERVER_NAME="")
    log_path = gateway.process.log_path
    try:
        wait_for(
            lambda: "CERTIFICATE_VERIFY_FAILED" in log_path.read_text(errors="replace"),
            timeout=60,
            what="the gateway to report the broker's certificate",
        )
        assert proc.poll() is None, "the gateway keeps trying (the certificate may be renewed)"
        ready = httpx.get(f"{gateway.process.url}/readyz", timeout=5)
        assert ready.status_code != 200
        client_id = gateway.process.env["TELECARE_MQTT__CLIENT_ID"]
        assert client_id not in broker.log(), "it reached MQTT"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
