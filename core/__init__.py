"""spawnkit.core: task descriptions, the task life cycle, the scheduler."""
