"""Incidents that evolve: identifiers and the per-action state machine (phase 1, partial; see issue 12)."""
