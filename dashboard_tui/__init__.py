"""dashboard_tui."""
