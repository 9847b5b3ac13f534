"""Regenerate ``data/bfcl_multi_turn.json`` from the ``bfcl-eval`` wheel.

The wheel's multi-turn tasks, ground truth and tool docs are reduced to token counts, so the
package ships a small file and needs no tokenizer at run time. Run it with
``autellix bench bfcl-data --wheel bfcl_eval-*.whl`` after ``pip download --no-deps bfcl-eval``.

Tokens are counted with tiktoken's ``cl100k_base``, read from the copy that ``llama-index-core``
ships (no hub download). Llama 3's tokenizer is ``cl100k_base`` plus 28k extra tokens, so counts
are close to Llama-3's. Tool results are not in the data; each is counted as the JSON object its
function's ``response`` schema describes, with a short value per field.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA_PREFIX = "bfcl_eval/data/"
CATEGORIES = ("base", "long_context", "miss_func", "miss_param")
DOC_FILES = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
}
"""BFCL's ``MULTI_TURN_FUNC_DOC_FILE_MAPPING`` for the classes multi-turn tasks use."""
SYSTEM_PROMPT = (
    "You are an expert in composing functions. You are given a question and a set of possible "
    "functions. Based on the question, you will need to make one or more function/tool calls to "
    "achieve the purpose. If none of the functions can be used, point it out. If the given "
    "question lacks the parameters required by the function, also point it out.\n\nYou should "
    "only return the function calls in your response.\n\nIf you decide to invoke any of the "
    "function(s), you MUST put it in the format of [func_name1(params_name1=params_value1, "
    "params_name2=params_value2...), func_name2(params)]\n\nYou SHOULD NOT include any other text "
    "in the response.\n\nAt each turn, you should try your best to complete the tasks requested "
    "by the user within the current turn. Continue to output functions to call until you have "
    "fulfilled the user's request to the best of your ability. Once you have no more functions to "
    "call, the system will consider the current turn complete and proceed to the next turn or "
    "task.\n\nHere is a list of functions in JSON format that you can invoke.\n"
)
"""BFCL's default prompting system prompt (``default_prompts.py``), without the functions."""
ADDED_FUNCTIONS_PROMPT = "I have updated some more functions you can choose from. What about now?"
MESSAGE_OVERHEAD = 5
"""Chat-template tokens around each message (Llama 3: header, role, blank line, end of turn)."""
LICENSE_NOTE = (
    "Derived from the Berkeley Function Calling Leaderboard (bfcl-eval {version}, Apache-2.0, "
    "(c) the Gorilla authors, UC Berkeley): token counts of the multi-turn tasks, ground truth "
    "and tool docs."
)


def tiktoken_counter() -> Callable[[str], int]:
    """Token counter over ``cl100k_base`` from llama-index-core's bundled tiktoken cache."""
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llama-index-core is needed for its bundled tiktoken files")
    cache = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base")
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def extract(wheel: Path, count: Callable[[str], int]) -> dict[str, Any]:
    """The compact data set: token counts per task, turn and ReAct step."""
    with zipfile.ZipFile(wheel) as archive:
        docs = {cls: _jsonl(archive, f"multi_turn_func_doc/{f}") for cls, f in DOC_FILES.items()}
        tasks: list[tuple[dict[str, Any], str, str]] = []
        for category in CATEGORIES:
            questions = _jsonl(archive, f"BFCL_v4_multi_turn_{category}.json")
            answers = {
                a["id"]: a
                for a in _jsonl(archive, f"possible_answer/BFCL_v4_multi_turn_{category}.json")
            }
            tasks.extend(_task(q, answers[q["id"]], docs, count) for q in questions)
    doc_sets = {key: count(text) for _, key, text in tasks}
    return {
        "license": LICENSE_NOTE.format(version=_version(wheel)),
        "tokenizer": "tiktoken cl100k_base",
        "message_overhead": MESSAGE_OVERHEAD,
        "system_prompt_tokens": count(SYSTEM_PROMPT) + MESSAGE_OVERHEAD,
        "doc_sets": doc_sets,
        "tasks": [task for task, _, _ in tasks],
    }


def _task(
    question: dict[str, Any],
    answer: dict[str, Any],
    docs: dict[str, list[dict[str, Any]]],
    count: Callable[[str], int],
) -> tuple[dict[str, Any], str, str]:
    functions = [f for cls in question["involved_classes"] for f in docs[cls]]
    missed_by_turn: dict[str, list[str]] = question.get("missed_function", {})
    missed = {name for names in missed_by_turn.values() for name in names}
    visible = [f for f in functions if f["name"] not in missed]
    key = "+".join(sorted(question["involved_classes"]))
    if missed:
        key += "-" + ",".join(sorted(missed))
    by_name = {f["name"]: f for f in functions}
    turns = []
    for index, (messages, calls) in enumerate(
        zip(question["question"], answer["ground_truth"], strict=True)
    ):
        added = [by_name[n] for n in missed_by_turn.get(str(index), [])]
        user = sum(count(m["content"]) + MESSAGE_OVERHEAD for m in messages)
        if added:
            user += count(json.dumps(added) + "\n" + ADDED_FUNCTIONS_PROMPT) + MESSAGE_OVERHEAD
        steps = [[count(f"[{c}]"), _result_tokens(c, by_name, count)] for c in calls]
        turns.append({"user": user, "steps": steps})
    task = {"id": question["id"], "docs": key, "turns": turns}
    return task, key, json.dumps(visible)


def _result_tokens(
    call: str, by_name: dict[str, dict[str, Any]], count: Callable[[str], int]
) -> int:
    """Tokens of the tool's result message, shaped by the function's ``response`` schema."""
    match = re.match(r"\s*([A-Za-z_][\w.]*)\s*\(", call)
    doc = by_name.get(match.group(1).split(".")[-1]) if match else None
    fields = (doc or {}).get("response", {}).get("properties", {}) or {"result": {}}
    text = json.dumps({name: "..." for name in fields})
    return count(text) + MESSAGE_OVERHEAD


def _jsonl(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    with archive.open(DATA_PREFIX + name) as handle:
        return [json.loads(line) for line in handle.read().decode().splitlines() if line.strip()]


def _version(wheel: Path) -> str:
    parts = wheel.name.split("-")
    return parts[1] if len(parts) > 1 else "unknown"


def write(wheel: Path, out: Path) -> dict[str, Any]:
    """Extract from ``wheel`` and write the compact JSON to ``out``; returns the data."""
    data = extract(wheel, tiktoken_counter())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    return data
