"""Loading and running Turkish CLIP for the commands."""
