"""`python -m spawnkit.cli`: the same as the `spawnkit` command."""

from spawnkit.cli.main import entry

entry()
