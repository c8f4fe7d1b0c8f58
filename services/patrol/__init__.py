"""Zones of compounds, their volunteer teams, patrol shifts, and the incidents found on patrol."""
