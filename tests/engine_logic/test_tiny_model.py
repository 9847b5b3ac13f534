"""The locally generated tiny model (no engine needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autellix_backend.cli import app
from autellix_backend.models import TinyModelSpec, ensure_tiny_model


def _files(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def test_generation_is_deterministic_and_cached(tmp_path: Path) -> None:
    first = ensure_tiny_model(tmp_path / "a")
    second = ensure_tiny_model(tmp_path / "b")
    assert _files(first) == _files(second)
    stamp = (first / "config.json").stat().st_mtime_ns
    assert ensure_tiny_model(first) == first
    assert (first / "config.json").stat().st_mtime_ns == stamp


def test_config_fits_the_cpu_attention_backend(tmp_path: Path) -> None:
    path = ensure_tiny_model(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] // config["num_attention_heads"] == 64
    tokenizer = json.loads((path / "tokenizer.json").read_text())
    assert config["vocab_size"] >= len(tokenizer["model"]["vocab"])
    assert "chat_template" in json.loads((path / "tokenizer_config.json").read_text())


def test_tokenizer_loads_with_transformers_and_applies_the_chat_template(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_tiny_model(tmp_path / "m")))
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True
    )
    assert isinstance(text, str) and text.endswith("<|assistant|>\n")
    assert tokenizer.decode(tokenizer("the scheduler")["input_ids"]) == "the scheduler"


def test_cache_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTELLIX_CACHE_DIR", str(tmp_path))
    assert ensure_tiny_model() == tmp_path / "models" / "tiny"


def test_cli_writes_the_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["model", "tiny", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "config.json").is_file()


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="multiple"):
        TinyModelSpec(hidden_size=250, num_attention_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        TinyModelSpec(vocab_size=10)
