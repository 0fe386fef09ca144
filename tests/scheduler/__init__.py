"""Tests of spawnkit.core's scheduler, dependency graph and clock."""
