"""Backend API stand-in."""
