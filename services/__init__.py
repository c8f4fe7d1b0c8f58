"""Linli: independent services that coordinate a neighbourhood's volunteer work."""
