"""A LlamaIndex Workflow: plan, research each question in parallel with a tool, then write.

- ``plan`` (1 LLM call) sends one ``Question`` per topic with ``ctx.send_event``;
- ``research`` (``num_workers=4``) looks its topic up with a ``FunctionTool`` over local
  notes, then summarises it (1 LLM call);
- ``write`` gathers every ``Finding`` with ``ctx.collect_events`` and writes the brief
  (1 LLM call).

Workers take different times (their lookups differ), so the join's parents are only right if
they come from the event flow. Replay mode picks the topics from a seeded policy; every LLM
call is made for real through ``autellix_integrations.llamaindex.openai_like``.

    python -m examples.llamaindex_research --base-url http://127.0.0.1:8000
"""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step

from autellix_integrations import llamaindex
from examples._common import ExampleRun, RunContext, new_program_id, shape, timed

NOTES = {
    "latency": "The Ohio data centre cut median API latency from 180 ms to 95 ms.",
    "revenue": "Quarterly revenue grew 12% on subscription renewals in Europe.",
    "support": "Support tickets fell 20% after the onboarding guide was rewritten.",
    "churn": "Two enterprise customers churned, citing missing single sign-on.",
    "hiring": "Hiring slowed: 14 of 30 planned engineering roles were filled.",
    "costs": "Cloud costs rose 8%, mostly from storage of raw event logs.",
}
PLAN_TOKENS, RESEARCH_TOKENS, WRITE_TOKENS = 64, 128, 256


class Question(Event):
    topic: str


class Finding(Event):
    topic: str
    summary: str


async def look_up(topic: str) -> str:
    """Search the team's notes for ``topic`` (a tool whose latency varies by topic)."""
    await asyncio.sleep(0.02 * (len(topic) % 4))
    return NOTES.get(topic, "no notes")


def build_workflow(ctx: RunContext, topics: list[str]) -> Workflow:
    def llm(max_tokens: int) -> Any:
        scaled = max(1, round(max_tokens * ctx.token_scale))
        return llamaindex.openai_like(
            base_url=ctx.base_url, model=ctx.model, max_tokens=scaled, temperature=0.7
        )

    planner, researcher, writer = llm(PLAN_TOKENS), llm(RESEARCH_TOKENS), llm(WRITE_TOKENS)
    search = FunctionTool.from_defaults(async_fn=look_up, name="look_up")

    class Research(Workflow):
        @step
        async def plan(self, context: Context, ev: StartEvent) -> Question | None:
            await planner.acomplete(f"Plan a brief on: {', '.join(topics)}")
            for topic in topics:
                context.send_event(Question(topic=topic))
            return None

        @step(num_workers=4)
        async def research(self, ev: Question) -> Finding:
            notes = (await search.acall(topic=ev.topic)).content
            reply = await researcher.acomplete(f"Summarise for a brief: {notes}")
            return Finding(topic=ev.topic, summary=reply.text)

        @step
        async def write(self, context: Context, ev: Finding) -> StopEvent | None:
            findings = context.collect_events(ev, [Finding] * len(topics))
            if findings is None:
                return None
            notes = "\n".join(f"- {f.topic}: {f.summary}" for f in findings)
            reply = await writer.acomplete(f"Write the brief from:\n{notes}")
            return StopEvent(result=reply.text)

    return Research(timeout=600)


def run(ctx: RunContext) -> ExampleRun:
    rng = random.Random(ctx.seed)
    topics = rng.sample(sorted(NOTES), rng.randint(3, 5))
    program_id = new_program_id("llamaindex-research")
    workflow = build_workflow(ctx, topics)

    async def go() -> Any:
        return await workflow.run(autellix_program_id=program_id)

    result, seconds = timed(lambda: asyncio.run(go()))
    researched = [(f"research[{k}]#1", ["plan[1]#1"]) for k in range(1, len(topics) + 1)]
    expected = shape(
        ("plan[1]#1", []),
        *researched,
        ("write[1]#1", [label for label, _ in researched]),
    )
    return ExampleRun(
        "llamaindex_research",
        program_id,
        len(topics) + 2,
        expected,
        seconds,
        f"{len(topics)} topics; brief of {len(str(result))} chars",
    )


if __name__ == "__main__":
    from examples.run_all import main

    sys.exit(main(["--only", "llamaindex_research", *sys.argv[1:]]))
