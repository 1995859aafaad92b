"""The control room's panels, one widget per module."""
