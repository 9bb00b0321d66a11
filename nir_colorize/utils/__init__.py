"""Helpers shared by the entry points."""
