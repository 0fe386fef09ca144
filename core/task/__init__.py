"""The task life cycle: descriptions, runtime state, the state machine."""
