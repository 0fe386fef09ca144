"""The recipes of the images spawnkit builds itself (one folder each): package data, so that
`spawnkit images build` finds them in any install (core.images)."""

__all__: list[str] = []
