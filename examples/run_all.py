"""Run the example agent programs against a running Autellix service and print a summary.

    autellix serve --engine sim &            # or the real engine
    python -m examples.run_all --base-url http://127.0.0.1:8000

Each example runs in replay mode by default (decisions from ground truth or a seeded policy,
every LLM call made for real). With ``--check`` (the default) the programs stay in the
service's process table after they finish (sessions are not closed) and the DAG the service
holds is compared with the one each graph should produce.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

import httpx

import autellix_graph
from autellix_graph import protocol
from autellix_integrations import llamaindex
from examples import chatbot, lats, llamaindex_research, map_reduce, react_bfcl
from examples._common import ExampleRun, RunContext, shape_from_program

EXAMPLES: dict[str, Callable[[RunContext], ExampleRun]] = {
    "chatbot": chatbot.run,
    "react_bfcl": react_bfcl.run,
    "map_reduce": map_reduce.run,
    "lats": lats.run,
    "llamaindex_research": llamaindex_research.run,
}


def check_dag(base_url: str, run: ExampleRun) -> str:
    """``ok`` when the service's DAG for the run equals the expected one, else what differs."""
    response = httpx.get(f"{base_url.rstrip('/')}/v1/programs/{run.program_id}", timeout=10)
    if response.status_code != 200:
        return f"program not found (HTTP {response.status_code})"
    got = shape_from_program(response.json())
    if got == run.expected:
        return "ok"
    missing, extra = run.expected - got, got - run.expected
    return f"differs: missing {sorted(missing)[:2]}, unexpected {sorted(extra)[:2]}"


def run_examples(
    ctx: RunContext, names: Sequence[str], *, check: bool
) -> list[tuple[str, ExampleRun | None, str]]:
    """Run ``names`` in order; (name, run or None on failure, DAG verdict or error)."""
    outcomes: list[tuple[str, ExampleRun | None, str]] = []
    for name in names:
        try:
            run = EXAMPLES[name](ctx)
        except Exception as exc:
            traceback.print_exc()
            outcomes.append((name, None, f"failed: {type(exc).__name__}: {exc}"))
            continue
        autellix_graph.force_flush()
        llamaindex.force_flush()
        verdict = check_dag(ctx.base_url, run) if check else "-"
        outcomes.append((name, run, verdict))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--base-url", default=os.environ.get(protocol.ENV_BACKEND_URL, "http://127.0.0.1:8000")
    )
    parser.add_argument("--mode", choices=("replay", "model"), default="replay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token-scale", type=float, default=1.0, help="scales every max_tokens")
    parser.add_argument("--model", default=None, help="model name to request")
    parser.add_argument("--only", action="append", choices=sorted(EXAMPLES), default=None)
    parser.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="close each program's session when it ends (the service then forgets it)",
    )
    args = parser.parse_args(argv)
    ctx = RunContext(args.base_url, args.mode, args.seed, args.token_scale, args.model)
    autellix_graph.instrument(base_url=args.base_url, sessions=not args.check)
    llamaindex.instrument(base_url=args.base_url, sessions=not args.check)
    try:
        outcomes = run_examples(ctx, args.only or list(EXAMPLES), check=args.check)
    finally:
        autellix_graph.uninstrument()
        llamaindex.uninstrument()
    width = max(len(name) for name in EXAMPLES)
    print(f"\n{'example':<{width}} {'calls':>5} {'seconds':>8}  {'DAG':<8} outcome")
    for name, run, verdict in outcomes:
        if run is None:
            print(f"{name:<{width}} {'-':>5} {'-':>8}  {verdict}")
        else:
            calls, seconds = run.num_llm_calls, run.seconds
            print(f"{name:<{width}} {calls:>5} {seconds:>8.2f}  {verdict:<8} {run.summary}")
    ok = all(run is not None and verdict in ("ok", "-") for _, run, verdict in outcomes)
    if not ok:
        print("some examples failed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
