"""Screens pushed over the control room."""
