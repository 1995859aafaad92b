"""Commissioners' figures: response times computed in SQL, the councils' returns (CSV), and
the report page. Definitions are in docs/reports.md."""
