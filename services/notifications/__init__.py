"""Alerts per member (the inbox), fed by every service's events."""
