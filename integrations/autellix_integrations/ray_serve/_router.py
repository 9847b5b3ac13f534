"""A Ray Serve request router with Autellix's locality rule.

Short prompts (at most ``threshold`` tokens) go to whichever replica Ray Serve finds least
loaded among all of them; a longer prompt carries its program's own history, so it goes to the
replica its program is pinned to (pinned on its first long call), where that history is in the
prefix cache. The program id is read from the request's ``vllm_xargs`` (the Autellix protocol's
``autellix_program_id``), or its ``user`` field.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ray.serve.request_router import (
    FIFOMixin,
    PendingRequest,
    ReplicaID,
    RequestRouter,
    RunningReplica,
)

if TYPE_CHECKING:
    from ray.serve._private.replica_result import ReplicaResult

from autellix_protocol.xargs import KEY_PROGRAM_ID

BYTES_PER_TOKEN = 4
"""The gateway's token estimate (UTF-8 bytes / 4): no tokenizer in the router."""


class AutellixRequestRouter(FIFOMixin, RequestRouter):
    """``request_router_config.request_router_class`` for Ray Serve (LLM) deployments.

    ``request_router_kwargs``: ``threshold`` (prompt tokens, default 2048, the paper's) and
    ``max_programs`` (pins kept, least recently used forgotten first).
    """

    def initialize_state(
        self, threshold: int = 2048, max_programs: int = 100_000, **_: Any
    ) -> None:
        self.threshold = threshold
        self.max_programs = max_programs
        self.pins: OrderedDict[str, ReplicaID] = OrderedDict()

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if pending_request is None or not candidate_replicas:
            return [candidate_replicas]
        program_id, prompt_tokens = request_facts(pending_request)
        if program_id is None or prompt_tokens <= self.threshold:
            return [candidate_replicas]  # Ray Serve picks the least loaded of them
        pinned = self.pins.get(program_id)
        home = [r for r in candidate_replicas if r.replica_id == pinned]
        if home:
            self.pins.move_to_end(program_id)
            return [home, [r for r in candidate_replicas if r.replica_id != pinned]]
        return [candidate_replicas]

    def on_request_routed(
        self, pending_request: PendingRequest, replica_id: ReplicaID, result: ReplicaResult
    ) -> None:
        program_id, prompt_tokens = request_facts(pending_request)
        if program_id is None or prompt_tokens <= self.threshold or program_id in self.pins:
            return
        self.pins[program_id] = replica_id
        while len(self.pins) > self.max_programs:
            self.pins.popitem(last=False)


def request_facts(pending_request: PendingRequest) -> tuple[str | None, int]:
    """The program id and estimated prompt tokens of a routed request (an OpenAI body)."""
    body = _body(pending_request.args[0] if pending_request.args else None)
    xargs = body.get("vllm_xargs") or {}
    program_id = (xargs.get(KEY_PROGRAM_ID) if isinstance(xargs, Mapping) else None) or body.get(
        "user"
    )
    messages = body.get("messages")
    if isinstance(messages, list):
        text = "".join(str(_body(m).get("content") or "") for m in messages)
    else:
        prompt = body.get("prompt")
        text = "".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt or "")
    tokens = -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN)
    return (str(program_id) if program_id else None), tokens


def _body(value: Any) -> Mapping[str, Any]:
    """A request as a mapping: a dict as is, a pydantic model (Ray Serve LLM) dumped."""
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else {}
