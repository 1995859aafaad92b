"""The gateway's lag, read from its API while the run plays (a client's view, no internals).

Every second: ``/readyz`` (journal, engine, broker session), ``/metrics`` (how long ingest took
from a message's arrival to its PUBACK: the gateway behind the broker) and ``/api/v1/ingest``
(journal head against what the shipper has copied). How long the API itself takes to answer is
recorded too: a starved gateway answers slowly.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from simulator import api_session

ACK = "telecare_ingest_ack_seconds"
POLL_S = 1.0


def _ack_buckets(text: str) -> dict[float, float]:
    """Cumulative counts of the ingest-to-PUBACK histogram, by upper bound (seconds)."""
    out: dict[float, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name != ACK:
            continue
        for s in fam.samples:
            if s.name == f"{ACK}_bucket":
                out[float(s.labels["le"])] = s.value
    return out


def bucket_quantile(first: dict[float, float], last: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of what was observed between two
    readings of a cumulative histogram (None if nothing was)."""
    bounds = sorted(last)
    counts = [last[b] - first.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    need = q * counts[-1]
    for b, c in zip(bounds, counts, strict=True):
        if c >= need:
            return b
    return bounds[-1]


class GatewayWatch:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.samples = 0
        self.not_ready = 0
        self.unreachable = 0
        self.api_max_s = 0.0
        self.backlog_max = 0
        self.first_ack: dict[float, float] | None = None
        self.last_ack: dict[float, float] = {}

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10, headers=api_session.HEADERS) as http:
            while True:
                due = time.monotonic() + POLL_S
                await self.sample(http)
                await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def sample(self, http: httpx.AsyncClient) -> None:
        started = time.monotonic()
        try:
            ready = await http.get(f"{self.base_url}/readyz")
            metrics = await http.get(f"{self.base_url}/metrics")
            ingest = (await http.get(f"{self.base_url}/api/v1/ingest")).json()
        except (httpx.HTTPError, ValueError):
            self.unreachable += 1
            return
        self.samples += 1
        self.api_max_s = max(self.api_max_s, (time.monotonic() - started) / 3)
        if ready.status_code != 200:
            self.not_ready += 1
        buckets = _ack_buckets(metrics.text)
        if self.first_ack is None:
            self.first_ack = buckets
        self.last_ack = buckets
        heads, shipped = ingest.get("journal_head", {}), ingest.get("shipped", {})
        backlog = sum(max(0, int(v) - int(shipped.get(k, 0))) for k, v in heads.items())
        self.backlog_max = max(self.backlog_max, backlog)

    def summary(self) -> dict[str, Any]:
        first = self.first_ack or {}
        p99 = bucket_quantile(first, self.last_ack, 0.99)
        top = bucket_quantile(first, self.last_ack, 1.0)
        return {
            "samples": self.samples,
            "not_ready": self.not_ready,
            "unreachable": self.unreachable,
            "api_answer_max_real_s": round(self.api_max_s, 3),
            # Bucket bounds (real seconds): the gateway behind the broker.
            "ingest_ack_p99_real_s_at_most": None if p99 is None or math.isinf(p99) else p99,
            "ingest_ack_max_real_s_at_most": None if top is None or math.isinf(top) else top,
            "shipper_backlog_max_rows": self.backlog_max,
        }
