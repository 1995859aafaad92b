"""The alarm engine: a pure core (triage, routing, escalation) and its asyncio shell."""
