"""The fleet model: gateways, their memory and the network load for N engines at a rate.

Each engine sustains ``EngineThroughput.programs_per_s`` at the latency target, and a fleet of
N engines N times that (the locality balancer keeps engines independent; the simulator check
in docs/capacity.md measures how close to linear this is). Every call costs its owning gateway
``gateway_cpu_s_per_call`` of CPU; a program's row lives for its latency (Little's law gives
the number of live rows); every call moves its prompt, its output, its snapshot and its report
between a gateway and an engine. With N gateways behind no router, a client's call lands on
its program's owner one time in N and is forwarded otherwise, which adds one hop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autellix_backend.plan.parts import MeasuredParts
from autellix_backend.plan.throughput import EngineThroughput

BYTES_PER_TOKEN = 4.0
"""Average bytes of UTF-8 text per token (English, Llama-3 tokenizer)."""
HTTP_OVERHEAD_BYTES = 600
"""Request line, headers and JSON framing of one call, each way."""


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """Choices the operator makes (defaults: a conservative deployment)."""

    cores_per_gateway: float = 1.0
    """A Python gateway is one process: one core."""
    gateway_utilization: float = 0.6
    """Highest CPU share a gateway runs at, so latency stays flat through bursts."""
    thin_router: bool = False
    """A router in front sends each call to its owner (no forwarding hop)."""
    memory_headroom: float = 2.0
    """Multiplier on table memory for bursts and Python's allocator."""
    base_memory_bytes: int = 250 * 1024 * 1024
    """Resident memory of an idle gateway process."""


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """The model's answer for one fleet size."""

    num_engines: int
    rate: float
    """Program arrival rate the plan serves (programs/s)."""
    capacity: float
    """Highest rate the engines sustain at the latency target (programs/s)."""
    calls_per_s: float
    num_gateways: int
    gateway_cpu_util: float
    """CPU share each gateway runs at."""
    live_programs: float
    """Rows in all process tables together."""
    memory_per_gateway_bytes: float
    engine_network_bytes_per_s: float
    """Gateway-engine traffic, both ways, whole fleet."""
    forward_network_bytes_per_s: float
    """Gateway-gateway forwarding traffic, whole fleet (0 behind a thin router)."""

    @property
    def overloaded(self) -> bool:
        return self.rate > self.capacity


def plan_fleet(
    num_engines: int,
    engine: EngineThroughput,
    parts: MeasuredParts,
    *,
    rate: float | None = None,
    settings: FleetSettings | None = None,
) -> FleetPlan:
    """Plan ``num_engines`` engines serving ``rate`` programs/s (default: their capacity)."""
    if num_engines < 1:
        raise ValueError("num_engines must be at least 1")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    settings = settings or FleetSettings()
    capacity = num_engines * engine.programs_per_s
    rate = capacity if rate is None else rate
    calls_per_s = rate * engine.calls_per_program
    cpu = calls_per_s * parts.gateway_cpu_s_per_call
    per_gateway = settings.cores_per_gateway * settings.gateway_utilization
    num_gateways = max(1, math.ceil(cpu / per_gateway))
    live = rate * engine.program_latency_s
    row = parts.table_bytes_per_program + parts.table_bytes_per_node * max(
        0.0, engine.calls_per_program - 1
    )
    memory = settings.base_memory_bytes + settings.memory_headroom * row * live / num_gateways
    call_bytes = _call_bytes(engine, parts)
    forwarded = 0.0 if settings.thin_router else (num_gateways - 1) / num_gateways
    return FleetPlan(
        num_engines=num_engines,
        rate=rate,
        capacity=capacity,
        calls_per_s=calls_per_s,
        num_gateways=num_gateways,
        gateway_cpu_util=cpu / (num_gateways * settings.cores_per_gateway),
        live_programs=live,
        memory_per_gateway_bytes=memory,
        engine_network_bytes_per_s=calls_per_s * call_bytes,
        forward_network_bytes_per_s=calls_per_s * forwarded * (call_bytes - parts.snapshot_bytes),
    )


def _call_bytes(engine: EngineThroughput, parts: MeasuredParts) -> float:
    """Bytes one call moves between a gateway and an engine, both ways."""
    text = (engine.prompt_tokens_per_call + engine.output_tokens_per_call) * BYTES_PER_TOKEN
    return text + 2 * HTTP_OVERHEAD_BYTES + parts.snapshot_bytes + parts.report_bytes
