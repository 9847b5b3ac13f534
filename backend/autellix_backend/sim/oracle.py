"""Service estimates from the cost model, for the clairvoyant SRPT oracle."""

from __future__ import annotations

from autellix_backend.core import SchedulerConfig, ServiceUnit
from autellix_backend.sim.profiles import CostModel
from autellix_backend.spec import CallSpec


def estimate_call_service(call: CallSpec, model: CostModel, config: SchedulerConfig) -> float:
    """Service ``call`` will attain if run alone: its prefill step plus one decode step per
    further output token (engine seconds), or its token cost when service is counted in tokens.
    """
    prompt = max(call.prompt_tokens, 1)
    if config.service_unit is ServiceUnit.TOKENS:
        return config.prefill_token_cost * prompt + config.decode_token_cost * call.output_tokens
    decodes = max(call.output_tokens - 1, 0)
    mean_context = prompt + call.output_tokens // 2
    return model.prefill_time(prompt) + decodes * model.decode_time(1, mean_context)
