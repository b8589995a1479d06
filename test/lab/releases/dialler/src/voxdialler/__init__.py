"""Dialler stand-in."""
