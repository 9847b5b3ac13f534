"""Which step's event triggered which step: the DAG of a Workflow from its event flow.

A Workflow step runs when an event reaches it, so its first LLM call depends on the calls
that came before that event: the emitting step's frontier *when it emitted it* (returned it,
or sent it with ``ctx.send_event``). A step that gathers events with ``ctx.collect_events``
depends on the emitters of every event it collected. This holds under any timing: parallel
workers that finish at different times, or a sync-only LLM that runs them one after another.

LlamaIndex reports neither ``send_event`` nor ``collect_events`` to instrumentation, so
:func:`patch_context` wraps both on ``Context`` (once; the wrappers do nothing while the
integration is inactive). Emitted events are held per program, with their frontier, until the
program ends.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.workflow import Context, Event

from autellix_graph._dag import ROOT_THREAD_ID, Frontier
from autellix_graph._recorder import ProgramRecorder, Record, RecordKind

MAX_EVENTS_PER_PROGRAM = 100_000
"""Emitted events remembered per program; the oldest are forgotten beyond this."""


class EventFlow:
    """The frontier each emitted event carries, per program (keyed by the event object)."""

    def __init__(self, recorder: ProgramRecorder) -> None:
        self._recorder = recorder
        self._programs: dict[str, OrderedDict[int, tuple[Event, Frontier]]] = {}
        self._lock = threading.Lock()

    def emitted(self, record: Record, result: Any) -> None:
        """``record``'s thread emitted ``result`` (an event, or the list a fan-out step
        returns); its frontier now is what each event carries."""
        emitted = triggering_events({"result": result})
        if not emitted or record.kind is RecordKind.PROGRAM:
            return
        frontier = self._recorder.frontier(record)
        with self._lock:
            events = self._programs.setdefault(record.program.program_id, OrderedDict())
            for event in emitted:
                # The event is kept alive with its entry, so its id() cannot be reused meanwhile.
                events[id(event)] = (event, frontier)
            while len(events) > MAX_EVENTS_PER_PROGRAM:
                events.popitem(last=False)

    def frontier(self, record: Record, events: Sequence[Any]) -> Frontier:
        """What a step of ``record``'s program triggered by ``events`` depends on; an event no
        step emitted (the start event, one sent from outside) carries the frontier of the
        program's root thread."""
        frontiers: list[Frontier] = []
        with self._lock:
            known: Mapping[int, tuple[Event, Frontier]] = (
                self._programs.get(record.program.program_id) or {}
            )
            entries = [known.get(id(event)) for event in events]
        for event, entry in zip(events, entries, strict=True):
            if entry is not None and entry[0] is event:
                frontiers.append(entry[1])
            else:
                frontiers.append(self._recorder.frontier(record, ROOT_THREAD_ID))
        return Frontier.merge(frontiers)

    def forget(self, program_id: str) -> None:
        """The program ended: drop its events."""
        with self._lock:
            self._programs.pop(program_id, None)


def triggering_events(arguments: dict[str, Any]) -> list[Event]:
    """The events a step was called with (an event argument, or a collected list)."""
    found: list[Event] = []
    for value in arguments.values():
        if isinstance(value, Event):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(v for v in value if isinstance(v, Event))
    return found


_patched = False
_patch_lock = threading.Lock()


def patch_context(flow_of: Callable[[], tuple[ProgramRecorder, EventFlow] | None]) -> None:
    """Wrap ``Context.send_event`` and ``Context.collect_events`` to report the event flow;
    ``flow_of`` returns the active recorder and flow, or None while inactive. Idempotent."""
    global _patched
    with _patch_lock:
        if _patched:
            return
        _patched = True
    send_event = Context.send_event
    collect_events = Context.collect_events

    def current() -> tuple[ProgramRecorder, EventFlow, Record] | None:
        active = flow_of()
        span_id = active_span_id.get()
        if active is None or span_id is None:
            return None
        record = active[0].get(span_id)
        return None if record is None else (*active, record)

    @functools.wraps(send_event)
    def send_event_reported(self: Context, message: Event, *args: Any, **kwargs: Any) -> None:
        found = _quietly(current)
        if found is not None:
            _quietly(lambda: found[1].emitted(found[2], message))
        send_event(self, message, *args, **kwargs)

    @functools.wraps(collect_events)
    def collect_events_reported(self: Context, *args: Any, **kwargs: Any) -> Any:
        collected = collect_events(self, *args, **kwargs)
        if collected:
            found = _quietly(current)
            if found is not None:
                recorder, flow, record = found
                _quietly(lambda: recorder.join(record, flow.frontier(record, collected)))
        return collected

    Context.send_event = send_event_reported  # type: ignore[method-assign, assignment]
    Context.collect_events = collect_events_reported  # type: ignore[method-assign, assignment]


def _quietly(fn: Callable[[], Any]) -> Any:
    """Run a bookkeeping step of a wrapper; never let it break the app."""
    try:
        return fn()
    except Exception:
        return None
