"""The reports of a call's engine requests that ended before the last one.

vLLM fans a request with ``n > 1`` out into ``n`` engine requests that share one output
queue. When several of them end before the front end reads that queue (always, when they end
in the same step), vLLM merges their outputs and keeps only the last one's
``kv_transfer_params``, so all in-band reports but one would be lost. So each report also
carries (under ``SIBLINGS_KEY``) the reports of the live requests with the same Autellix call
id that ended before it; the front end adds up the distinct reports by request id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autellix_protocol import KEY_CALL_ID


class SiblingReports:
    """Reports of ended requests, kept while another request of the same call is live."""

    def __init__(self) -> None:
        self._call_of: dict[str, str] = {}
        self._live: dict[str, int] = {}
        self._ended: dict[str, list[dict[str, Any]]] = {}

    def arrived(self, request_id: str, extra_args: Mapping[str, Any] | None) -> None:
        """A request of the call named in its ``vllm_xargs`` (none: a request of its own)."""
        call = extra_args.get(KEY_CALL_ID) if extra_args else None
        if not isinstance(call, str) or not call:
            return
        self._call_of[request_id] = call
        self._live[call] = self._live.get(call, 0) + 1

    def ended(self, request_id: str, report: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The reports of the call's requests that ended before this one; records ``report``
        and forgets the call once none of its requests is live."""
        call = self._call_of.pop(request_id, None)
        if call is None:
            return []
        earlier = list(self._ended.get(call, ()))
        live = self._live[call] - 1
        if live:
            self._live[call] = live
            if report is not None:
                self._ended.setdefault(call, []).append(report)
        else:
            del self._live[call]
            self._ended.pop(call, None)
        return earlier

    def __len__(self) -> int:
        """Requests being tracked (0 once every request has ended)."""
        return len(self._call_of)
