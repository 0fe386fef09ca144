"""spawnkit.spawners: the backends (process, docker, podman), each registered under the
`spawnkit.spawners` entry-point group and found by name through spawnkit.core.registry."""
