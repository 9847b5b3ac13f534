"""Run bench simulations, in parallel processes, with a progress bar."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

from autellix_backend.bench.records import RunRecord, RunSpec
from autellix_backend.bench.sweeps import MAX_NUM_SEQS
from autellix_backend.bench.systems import get_system
from autellix_backend.core import SchedulerConfig
from autellix_backend.sim import EngineConfig, SimConfig, run_simulation
from autellix_backend.workloads import WORKLOADS, ProgramSpec, arrival_times, with_arrivals

DEFAULT_WORKERS = 2
_SPEC_FIELDS = frozenset(f.name for f in dataclasses.fields(RunSpec))
"""Summary keys that repeat a spec field (``num_programs``) are left to the spec."""


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """What every run of a sweep shares: the scheduler defaults and the engine."""

    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(max_num_seqs=MAX_NUM_SEQS))
    """The engine; each system turns its optimisations on or off."""


def sim_config(spec: RunSpec, settings: BenchSettings) -> SimConfig:
    """The simulator settings of ``spec``: the system's policy and engine, the engines asked."""
    system = get_system(spec.system)
    return SimConfig(
        scheduler=system.scheduler(settings.scheduler),
        engine=system.engine(settings.engine),
        num_engines=spec.num_engines,
        balancer=spec.balancer,
        seed=spec.seed,
    )


def programs_for(spec: RunSpec) -> list[ProgramSpec]:
    """The programs of ``spec``: its workload with its arrivals."""
    base = _generated(spec.workload, spec.num_programs, spec.seed)
    times = arrival_times(spec.num_programs, spec.arrivals, rate=spec.rate or 1.0, seed=spec.seed)
    return with_arrivals(base, times)


@lru_cache(maxsize=8)
def _generated(workload: str, num_programs: int, seed: int) -> list[ProgramSpec]:
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    return WORKLOADS[workload](num_programs, seed=seed)


def run_one(spec: RunSpec, settings: BenchSettings) -> RunRecord:
    """Simulate ``spec`` and summarise it."""
    started = time.perf_counter()
    result = run_simulation(programs_for(spec), sim_config(spec, settings))
    metrics = {k: v for k, v in result.summary().items() if k not in _SPEC_FIELDS}
    return RunRecord(spec, metrics, time.perf_counter() - started)


def run_all(
    specs: Sequence[RunSpec],
    settings: BenchSettings,
    *,
    workers: int = DEFAULT_WORKERS,
    progress: bool = True,
    desc: str = "bench",
    checkpoint: Path | None = None,
) -> list[RunRecord]:
    """Run every spec (in ``workers`` processes when above 1); records in the order of ``specs``.

    The biggest runs start first so the last process is not left with a long one. With a
    ``checkpoint`` file, each finished record is appended to it as a JSON line, and specs already
    recorded there are not run again (an interrupted sweep resumes where it stopped).
    """
    done = read_checkpoint(checkpoint) if checkpoint is not None else {}
    records = {i: done[spec] for i, spec in enumerate(specs) if spec in done}
    todo = sorted(
        (i for i in range(len(specs)) if i not in records), key=lambda i: -run_cost(specs[i])
    )
    bar = tqdm(total=len(specs), initial=len(records), desc=desc, disable=not progress, unit="run")

    def finished(i: int, record: RunRecord) -> None:
        records[i] = record
        if checkpoint is not None:
            with checkpoint.open("a") as handle:
                handle.write(json.dumps(record.row()) + "\n")
        bar.update()

    if workers <= 1:
        for i in todo:
            finished(i, run_one(specs[i], settings))
    else:
        with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1)) as pool:
            futures = {pool.submit(run_one, specs[i], settings): i for i in todo}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    bar.close()
    return [records[i] for i in range(len(specs))]


def read_checkpoint(path: Path) -> dict[RunSpec, RunRecord]:
    """Records already appended to a checkpoint file (none if it does not exist)."""
    if not path.is_file():
        return {}
    records = (RunRecord.from_row(json.loads(line)) for line in path.read_text().splitlines())
    return {r.spec: r for r in records}


def run_cost(spec: RunSpec) -> float:
    """Rough relative cost of simulating ``spec`` (programs x calls per program)."""
    calls_per_program = {"lats": 160.0, "mixed": 60.0, "bfcl": 10.0, "sharegpt": 7.0}
    return spec.num_programs * calls_per_program.get(spec.workload, 10.0)
