"""spawnkit.spawners: where tasks run (process, docker, podman)."""
