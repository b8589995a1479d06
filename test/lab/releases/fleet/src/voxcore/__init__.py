"""VoxCore worker stand-in."""
