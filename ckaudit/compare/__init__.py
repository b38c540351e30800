"""Versions compared: before/after verdicts for the hook and `check`, and blame's walk through history."""
