"""Audit: the append-only, hash-chained record of who did what to which case."""
