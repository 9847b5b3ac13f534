"""The BFCL extractor on a wheel laid out like bfcl-eval's (built here, no download)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from autellix_backend.workloads import bfcl_extract

DOCS = {
    "MathAPI": [
        {
            "name": "add",
            "description": "Add two numbers.",
            "response": {"properties": {"result": {}}},
        },
        {"name": "sqrt", "description": "Square root.", "response": {"properties": {"result": {}}}},
    ],
}


def _words(text: str) -> int:
    return len(text.split())


def _wheel(tmp_path: Path) -> Path:
    path = tmp_path / "bfcl_eval-9.9.9-py3-none-any.whl"
    question = {
        "id": "multi_turn_miss_func_0",
        "involved_classes": ["MathAPI"],
        "question": [[{"role": "user", "content": "add one and two"}], []],
        "missed_function": {"1": ["sqrt"]},
    }
    answer = {"id": "multi_turn_miss_func_0", "ground_truth": [["add(a=1, b=2)"], ["sqrt(x=9)"]]}
    with zipfile.ZipFile(path, "w") as wheel:
        prefix = bfcl_extract.DATA_PREFIX
        for cls, name in bfcl_extract.DOC_FILES.items():
            lines = [json.dumps(d) for d in DOCS.get(cls, [])]
            wheel.writestr(f"{prefix}multi_turn_func_doc/{name}", "\n".join(lines))
        for category in bfcl_extract.CATEGORIES:
            rows = [question] if category == "miss_func" else []
            gts = [answer] if category == "miss_func" else []
            wheel.writestr(
                f"{prefix}BFCL_v4_multi_turn_{category}.json", "\n".join(map(json.dumps, rows))
            )
            wheel.writestr(
                f"{prefix}possible_answer/BFCL_v4_multi_turn_{category}.json",
                "\n".join(map(json.dumps, gts)),
            )
    return path


def test_extract_counts_turns_steps_and_held_back_docs(tmp_path: Path) -> None:
    data = bfcl_extract.extract(_wheel(tmp_path), _words)
    assert "Apache-2.0" in data["license"] and "9.9.9" in data["license"]
    [task] = data["tasks"]
    assert task["docs"] == "MathAPI-sqrt"
    overhead = bfcl_extract.MESSAGE_OVERHEAD
    first, second = task["turns"]
    assert first["user"] == _words("add one and two") + overhead
    assert first["steps"] == [[_words("[add(a=1, b=2)]"), _words('{"result": "..."}') + overhead]]
    # The held-back `sqrt` doc arrives with turn 2's (otherwise empty) message.
    assert second["user"] > overhead
    assert len(second["steps"]) == 1
    visible = json.dumps([DOCS["MathAPI"][0]])
    assert data["doc_sets"]["MathAPI-sqrt"] == _words(visible)
