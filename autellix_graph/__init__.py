"""Autellix LangGraph middleware: program DAGs, OpenTelemetry spans and tagged LLM calls.

Attach to every LangGraph run in the process with one line:

>>> import autellix_graph
>>> autellix_graph.instrument(base_url="http://127.0.0.1:8000")  # doctest: +SKIP

and point your model at Autellix with :func:`chat_openai` (or any httpx client made by
:func:`http_client` / :func:`async_http_client`).
"""

from __future__ import annotations

from autellix_graph._clients import async_http_client, chat_openai, http_client
from autellix_graph._context import CallTag, current_headers, current_program_id
from autellix_graph._dag import (
    Dag,
    DagBuilder,
    DagEvent,
    DagNode,
    NodeAdded,
    NodeKind,
    RunResumed,
    TaskStarted,
    ThreadInfo,
    build_dag,
)
from autellix_graph._handler import AutellixCallbackHandler
from autellix_graph._instrumentor import (
    AutellixInstrumentor,
    force_flush,
    instrument,
    uninstrument,
)
from autellix_graph._recorder import ProgramRecorder
from autellix_graph._settings import Settings, SettingsError
from autellix_graph._version import __version__

__all__ = [
    "AutellixCallbackHandler",
    "AutellixInstrumentor",
    "CallTag",
    "Dag",
    "DagBuilder",
    "DagEvent",
    "DagNode",
    "NodeAdded",
    "NodeKind",
    "ProgramRecorder",
    "RunResumed",
    "Settings",
    "SettingsError",
    "TaskStarted",
    "ThreadInfo",
    "__version__",
    "async_http_client",
    "build_dag",
    "chat_openai",
    "current_headers",
    "current_program_id",
    "force_flush",
    "http_client",
    "instrument",
    "uninstrument",
]
