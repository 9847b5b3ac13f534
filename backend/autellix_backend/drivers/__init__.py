"""Workload drivers: front ends that replay programs against engines and own their table."""
