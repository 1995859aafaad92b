"""dashboard_tui: the control-room terminal, a pure HTTP client of the gateway.

It never imports ``gateway`` or ``simulator`` (tests/test_architecture.py holds it to that).
"""
