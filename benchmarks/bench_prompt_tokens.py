"""What routing by KV events costs the gateway per call: tokenizing the prompt and hashing it.

    python benchmarks/bench_prompt_tokens.py [--calls 200] [--tokenizer PATH]

With the ``cache_aware`` balancer and engines that publish KV events, the gateway renders
each chat prompt with the engine's chat template, tokenizes it and hashes its full blocks
(``server/kv_feed.py``); other balancers hash the text only, or nothing. This times both on
a short chat and on a BFCL-like agent prompt of about 5k tokens (a BFCL multi-turn task's
tool docs, 18 file-system functions, in the system prompt and as ``tools``, then three
turns), with the
tiny model's tokenizer unless ``--tokenizer`` names another. Each call appends a new user
turn; "new prefix" empties the tokenizer's piece cache before each call (a program's first
call, tool docs never seen), "prefix seen" keeps it (the calls after). Wall and CPU time per
call, the machine load beside them.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from autellix_backend.engines.base import RequestKind
from autellix_backend.engines.kv_events import KVEventSource, token_block_hashes
from autellix_backend.models import ensure_tiny_model
from autellix_backend.server.prompt_tokens import PieceCache, PromptTokenizer
from autellix_backend.server.prompts import MAX_BLOCKS, block_hashes

TASKS = Path(__file__).resolve().parents[1] / "examples" / "bfcl" / "tasks.json"
BLOCK = 32


def bfcl_like() -> dict[str, Any]:
    """A BFCL multi-turn task (file system only): its tool docs, then three users' turns."""
    data = json.loads(TASKS.read_text())
    task = data["tasks"][1]
    docs = [doc for name in task["involved_classes"] for doc in data["function_docs"][name]]
    system = (
        "You are an expert in composing functions. Here is a list of functions in JSON "
        f"format that you can invoke:\n{json.dumps(docs)}"
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for turn in task["question"][:3]:
        messages.extend(turn)
        messages.append({"role": "assistant", "content": "[cd(folder='document')]"})
    tools = [{"type": "function", "function": doc} for doc in docs]
    return {"model": "m", "messages": messages[:-1], "tools": tools}


def short() -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "What is the weather?"}]}


def timed(fn: Callable[[], object], calls: int) -> tuple[float, float, float]:
    """Median and p90 wall microseconds per call, mean CPU microseconds per call."""
    fn()
    walls: list[float] = []
    cpu0 = time.process_time()
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        walls.append((time.perf_counter() - start) * 1e6)
    cpu = (time.process_time() - cpu0) * 1e6 / calls
    walls.sort()
    return statistics.median(walls), walls[int(0.9 * (len(walls) - 1))], cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--tokenizer", default=None, help="default: the tiny model's")
    args = parser.parse_args()
    path = args.tokenizer or str(ensure_tiny_model())
    tokenizer = PromptTokenizer.load(KVEventSource(endpoint="unused", tokenizer=path))
    print(f"load average {os.getloadavg()[0]:.2f}; tokenizer {path}; {args.calls} calls each")
    print("prompt | characters | tokens | tokenize+hash median / p90 / CPU | text hash median (us)")
    for name, body in (("short chat", short()), ("BFCL-like chat", bfcl_like())):
        text = "\n".join(str(m["content"]) for m in body["messages"])
        ids = tokenizer.token_ids(RequestKind.CHAT, body)
        turns = itertools.count()

        def tokens(
            body: dict[str, Any] = body, turns: Iterator[int] = turns, cold: bool = False
        ) -> object:
            # each call ends with a new user turn, as an agent's next call does
            turn = {"role": "user", "content": f"Step {next(turns)}: go on."}
            call = {**body, "messages": [*body["messages"], turn]}
            if cold:
                tokenizer.pieces = PieceCache()
            ids = tokenizer.token_ids(RequestKind.CHAT, call)
            return token_block_hashes(ids, BLOCK, max_blocks=MAX_BLOCKS)

        cold = timed(functools.partial(tokens, cold=True), args.calls)
        warm = timed(tokens, args.calls)
        text_median, _, _ = timed(functools.partial(block_hashes, text), args.calls)
        for label, (median, p90, cpu) in (("new prefix", cold), ("prefix seen", warm)):
            timing = f"{median:,.0f} / {p90:,.0f} / {cpu:,.0f}"
            print(f"{name}, {label} | {len(text):,} | {len(ids):,} | {timing} | {text_median:,.0f}")


if __name__ == "__main__":
    main()
