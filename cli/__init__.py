"""spawnkit.cli: the spawnkit command line."""
