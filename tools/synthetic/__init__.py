"""Procedural street scenes in several visual domains (used by tools/make_synthetic_data.py)."""
