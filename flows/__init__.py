"""Prefect flows: one per pipeline stage, each a thin wrapper around the wm library."""
