"""Accounts, sessions, sign-in limits and the audit trail (no HTTP here: see gateway.api)."""
