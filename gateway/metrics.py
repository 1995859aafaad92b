"""Prometheus metrics for the gateway, on a registry of its own (so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "telecare_ingest_messages",
            "MQTT messages handled, by result (accepted, duplicate, dead_letter).",
            ["result"],
            registry=r,
        )
        self.records = Counter(
            "telecare_ingest_records",
            "Canonical records journaled, by type (event, callout).",
            ["record_type"],
            registry=r,
        )
        self.dead_letters = Counter(
            "telecare_dead_letters", "Messages dead-lettered, by reason.", ["reason"], registry=r
        )
        self.journal_commit_seconds = Histogram(
            "telecare_journal_commit_seconds",
            "Time for one group commit (write and fsync).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.journal_batch_size = Histogram(
            "telecare_journal_batch_messages",
            "Messages per group commit.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.ingest_latency = Histogram(
            "telecare_ingest_ack_seconds",
            "From a message's arrival to its PUBACK (after the journal commit).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "telecare_mqtt_connected", "1 while connected to the broker.", registry=r
        )
        self.mqtt_connects = Counter(
            "telecare_mqtt_connects", "Successful broker connections.", registry=r
        )
        self.db_up = Gauge(
            "telecare_db_up", "1 while the shipper reaches the database.", registry=r
        )
        self.shipped = Counter(
            "telecare_shipped_rows", "Journal rows copied to the database.", ["stream"], registry=r
        )
        self.ship_errors = Counter(
            "telecare_shipper_errors", "Failed shipping attempts (database away).", registry=r
        )
        self.quarantined = Counter(
            "telecare_shipper_quarantined_rows",
            "Journal rows the database refused, set aside in ship_quarantine (the rest ships).",
            ["stream"],
            registry=r,
        )
        self.shipper_lag_events = Gauge(
            "telecare_shipper_lag_events",
            "Journal rows not yet in the database.",
            ["stream"],
            registry=r,
        )
        self.shipper_lag_seconds = Gauge(
            "telecare_shipper_lag_seconds",
            "Age of the oldest record not yet in the database (0 when caught up).",
            registry=r,
        )
        self.journal_head = Gauge(
            "telecare_journal_head_seq", "Highest journal sequence.", ["stream"], registry=r
        )
        self.engine_open_alarms = Gauge(
            "telecare_open_alarms", "Alarms open in the engine.", registry=r
        )
        self.engine_offers = Counter("telecare_offers", "Offers sent to carers.", registry=r)
        self.ingest_fences = Counter(
            "telecare_ingest_fences",
            "Fences heard back through ingest (each lets the horizon move; see gateway.fence).",
            registry=r,
        )
        self.engine_ingest_lag = Gauge(
            "telecare_engine_ingest_lag_seconds",
            "Scheme seconds the ingest horizon lags engine time (supervision judges up to it).",
            registry=r,
        )
        self.ingest_queue = Gauge(
            "telecare_ingest_queue_messages",
            "Messages decoded and waiting for the journal commit (bounded).",
            registry=r,
        )
        self.ingest_in_flight = Gauge(
            "telecare_ingest_in_flight",
            "Messages received from the broker and not yet acknowledged (bounded by the MQTT"
            " Receive Maximum the gateway sends).",
            registry=r,
        )
        self.ingest_in_flight_peak = Gauge(
            "telecare_ingest_in_flight_peak",
            "The most messages ever unacknowledged at once since the gateway started.",
            registry=r,
        )
        self.ingest_urgent = Counter(
            "telecare_ingest_urgent",
            "Messages taken ahead of heartbeats (alarm-class events, call-outs, carer actions;"
            " see gateway.flow.TwoLaneQueue) and journaled in commits of their own.",
            registry=r,
        )
        self.ingest_paused = Counter(
            "telecare_ingest_read_pauses",
            "Times the gateway stopped reading the broker because its window was full.",
            registry=r,
        )
        self.receipts = Counter(
            "telecare_receipts",
            "Receipts to devices and the Careline, by result: ok, refused (the broker said no),"
            " unacknowledged (no PUBACK), dropped (receipt queue full; the device resends).",
            ["result"],
            registry=r,
        )
        self.engine_published = Counter(
            "telecare_outbox_published", "Engine messages published to the broker.", registry=r
        )
        self.outbox_failures = Counter(
            "telecare_outbox_failures",
            "Outbox publish attempts that failed, by result: refused (PUBACK reason >= 0x80)"
            " or unacknowledged (no PUBACK). Each is retried.",
            ["result"],
            registry=r,
        )
        self.outbox_abandoned = Counter(
            "telecare_outbox_abandoned",
            "Outbox messages given up after the most attempts (the control room was told).",
            registry=r,
        )
        self.outbox_retrying = Gauge(
            "telecare_outbox_retrying", "Outbox messages waiting to be retried.", registry=r
        )
