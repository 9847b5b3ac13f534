"""What one bench run is (a workload, a system, a load) and what it measured."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_METRIC = "latency_target"
"""Metric key of the latency target (s/token) a capacity-search probe was judged against."""


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One simulation of the sweep."""

    experiment: str
    """Which figure the run feeds: ``latency``, ``balancer``, ``scaling`` or ``makespan``."""
    workload: str
    system: str
    """A key of ``SYSTEMS``."""
    num_programs: int
    rate: float = 0.0
    """Programs per second (0 for offline batches)."""
    arrivals: str = "poisson"
    num_engines: int = 1
    balancer: str = "locality"
    seed: int = 0


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A finished run: its spec, the simulator's summary and how long it took to simulate."""

    spec: RunSpec
    metrics: dict[str, float] = field(hash=False)
    """``SimResult.summary()``: latency per token (mean, P50, P95, P99), throughput, makespan."""
    wall_seconds: float = 0.0

    @property
    def mean(self) -> float:
        return self.metrics["mean_latency_per_token"]

    def row(self) -> dict[str, Any]:
        """The record as one flat row (spec fields, then metrics)."""
        return {**dataclasses.asdict(self.spec), **self.metrics, "wall_seconds": self.wall_seconds}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        """Inverse of ``row`` (as read back from the JSON file)."""
        names = {f.name for f in dataclasses.fields(RunSpec)}
        metrics = {k: float(v) for k, v in row.items() if k not in names and k != "wall_seconds"}
        spec = RunSpec(**{k: v for k, v in row.items() if k in names})
        return cls(spec, metrics, float(row.get("wall_seconds", 0.0)))


def write_records(records: Sequence[RunRecord], out_dir: Path, stem: str = "runs") -> list[Path]:
    """Write ``records`` as ``<stem>.csv`` and ``<stem>.json`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [r.row() for r in records]
    csv_path, json_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.json"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps(rows, indent=1) + "\n")
    return [csv_path, json_path]


def read_records(path: Path) -> list[RunRecord]:
    """Records from a ``runs.json`` written by ``write_records`` (or a ``.jsonl`` checkpoint)."""
    text = path.read_text()
    rows: Iterable[dict[str, Any]] = (
        [json.loads(line) for line in text.splitlines() if line.strip()]
        if path.suffix == ".jsonl"
        else json.loads(text)
    )
    return [RunRecord.from_row(row) for row in rows]
