"""vLLM's KV events, translated into block hashes the gateway can compute itself.

vLLM publishes its prefix cache's changes on a ZMQ PUB socket (``--kv-events-config``):
multipart messages ``(topic, seq, payload)``, the payload a msgpack ``KVEventBatch``
``[ts, events, dp_rank]`` of tagged maps: ``BlockStored`` (``block_hashes``,
``parent_block_hash``, ``token_ids`` of those blocks, ``block_size``), ``BlockRemoved``
(``block_hashes``) and ``AllBlocksCleared``. vLLM's hashes depend on its hash function and
seed, so they are not used as they come: each stored block is renamed by our own chained
hash of its token ids (``token_block_hashes``), which the gateway computes from a tokenized
prompt without vLLM. Per engine, ``KVEventTranslator`` keeps vLLM hash -> our hash, for the
next blocks' parents and for removals.

Only the engine's own KV cache counts (``medium`` GPU or unset, KV cache group 0): offload
tiers' events are skipped. A vLLM hash stored twice (two blocks with equal content) is
mirrored once, so its first removal drops it: the mirror may miss a block, never claim one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("autellix.engines.kv_events")

KV_EVENTS_MISSING = (
    "reading vLLM's KV events needs pyzmq, msgspec and transformers (installed with vLLM: "
    "pip install 'autellix[vllm]')"
)
ENGINE_MEDIA = (None, "GPU")
"""``medium`` of the engine's own KV cache (vLLM's CPU backend says GPU too)."""
POLL_MS = 100
"""How often the subscriber thread looks for the stop flag between messages."""

KVListener = Callable[[list[int], list[int]], None]
"""Called with (stored, removed) block hashes, ours, of one engine."""


@dataclass(frozen=True, slots=True)
class KVEventSource:
    """Where an engine publishes its KV events and how to hash prompts as it does.

    Attributes:
        endpoint: ZMQ address the gateway's SUB socket connects to (``tcp://host:5557`` for a
            vLLM started with ``"endpoint": "tcp://*:5557"``, or an ``ipc://`` path); one
            with ``*`` is bound instead (the vLLM then connects to the gateway).
        tokenizer: the engine's tokenizer (a local path or hub name).
        block_size: tokens per KV block; None learns it from the first stored block.
        chat_template: the template the engine's chat endpoint uses, when not the
            tokenizer's own.
    """

    endpoint: str
    tokenizer: str
    block_size: int | None = None
    chat_template: str | None = None


def token_block_hashes(
    token_ids: Sequence[int], block_size: int, *, parent: int | None = None, max_blocks: int = -1
) -> list[int]:
    """Chained hashes of the full blocks of ``token_ids``: a block's hash is blake2b of its
    parent's hash and its token ids, so equal hashes mean equal prefixes.

    Args:
        parent: our hash of the block before the first one (None: the sequence starts here).
        max_blocks: hash at most this many blocks (-1: all full ones).
    """
    num_blocks = len(token_ids) // block_size
    if max_blocks >= 0:
        num_blocks = min(num_blocks, max_blocks)
    hashes: list[int] = []
    previous = b"" if parent is None else parent.to_bytes(8, "big")
    data = array("q", token_ids[: num_blocks * block_size]).tobytes()
    step = block_size * 8
    for start in range(0, len(data), step):
        previous = hashlib.blake2b(previous + data[start : start + step], digest_size=8).digest()
        hashes.append(int.from_bytes(previous, "big"))
    return hashes


class BadKVEvent(ValueError):
    """A message or event that is not a vLLM KV event batch."""


@dataclass(slots=True)
class KVDelta:
    """What one batch changed in an engine's cache, in our hashes."""

    stored: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    """Why each skipped event was malformed."""


class KVEventTranslator:
    """One engine's vLLM block hashes mapped to ours; turns event batches into our hashes.

    Not thread-safe on its own: ``KVEventSubscriber`` holds a lock around it.
    """

    def __init__(self, block_size: int | None = None) -> None:
        self.block_size = block_size
        """Tokens per block: given, or learned from the first stored block."""
        self._ours: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._ours)

    def apply(self, events: Iterable[Any]) -> KVDelta:
        """Our hashes stored and removed by a batch's events.

        A malformed event is skipped (its reason in ``KVDelta.bad``) and the others applied;
        a block whose parent is unknown (stored before the subscriber connected) is skipped,
        and so are its descendants.
        """
        delta = KVDelta()
        for event in events:
            try:
                self._apply(event, delta)
            except BadKVEvent as exc:
                delta.bad.append(str(exc))
        return delta

    def _apply(self, event: Any, delta: KVDelta) -> None:
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "AllBlocksCleared":
            delta.removed.extend(self._ours.values())
            self._ours.clear()
        elif kind not in ("BlockStored", "BlockRemoved"):
            raise BadKVEvent(f"not a KV event: {event!r:.200}")
        elif event.get("medium") not in ENGINE_MEDIA or event.get("group_idx") not in (0, None):
            return
        elif kind == "BlockStored":
            delta.stored.extend(self._stored(event))
        else:
            for vllm_hash in _hashes(event):
                ours = self._ours.pop(vllm_hash, None)
                if ours is not None:
                    delta.removed.append(ours)

    def clear(self) -> list[int]:
        """Forget every block (the engine restarted) and return their hashes, ours."""
        ours = list(self._ours.values())
        self._ours.clear()
        return ours

    def _stored(self, event: dict[str, Any]) -> list[int]:
        vllm_hashes = _hashes(event)
        token_ids = event.get("token_ids")
        block_size = event.get("block_size")
        if not isinstance(token_ids, list) or not isinstance(block_size, int) or block_size < 1:
            raise BadKVEvent("BlockStored without token_ids or block_size")
        if len(token_ids) != block_size * len(vllm_hashes):
            raise BadKVEvent(
                f"BlockStored with {len(token_ids)} tokens for {len(vllm_hashes)} blocks "
                f"of {block_size}"
            )
        if self.block_size is None:
            self.block_size = block_size
        parent_hash = event.get("parent_block_hash")
        parent = None if parent_hash is None else self._ours.get(_key(parent_hash))
        if parent_hash is not None and parent is None:
            return []
        try:
            ours = token_block_hashes(token_ids, block_size, parent=parent)
        except (TypeError, OverflowError) as exc:
            raise BadKVEvent(f"BlockStored with bad token ids: {exc}") from None
        self._ours.update(zip(vllm_hashes, ours, strict=True))
        return ours


def _key(value: Any) -> Hashable:
    if not isinstance(value, int | bytes):
        raise BadKVEvent(f"a block hash must be an int or bytes, got {type(value).__name__}")
    return value


def _hashes(event: dict[str, Any]) -> list[Hashable]:
    values = event.get("block_hashes")
    if not isinstance(values, list):
        raise BadKVEvent(f"{event.get('type')} without block_hashes")
    return [_key(v) for v in values]


def decode_batch(frames: Sequence[bytes]) -> tuple[int, list[Any]]:
    """(sequence number, events) of one ``(topic, seq, payload)`` message."""
    import msgspec

    if len(frames) != 3 or len(frames[1]) != 8:
        raise BadKVEvent(f"expected (topic, seq, payload) frames, got {len(frames)} frames")
    try:
        batch = msgspec.msgpack.decode(frames[2])
    except msgspec.DecodeError as exc:
        raise BadKVEvent(f"payload is not msgpack: {exc}") from None
    if not isinstance(batch, list) or len(batch) < 2 or not isinstance(batch[1], list):
        raise BadKVEvent(f"payload is not a KVEventBatch: {batch!r:.200}")
    return int.from_bytes(frames[1], "big", signed=True), batch[1]


class KVEventSubscriber:
    """Reads one engine's KV events in a thread and hands our hashes to ``listener``.

    ``listener`` runs on ``loop`` (``call_soon_threadsafe``): the gateway's balancer is
    touched only from its own event loop. A message that cannot be read is logged and
    dropped. ZMQ reconnects a connected socket by itself; ``stop`` ends the thread.
    """

    def __init__(
        self,
        engine_id: str,
        source: KVEventSource,
        listener: KVListener,
        call_soon_threadsafe: Callable[..., Any],
    ) -> None:
        self.engine_id = engine_id
        self.source = source
        self.translator = KVEventTranslator(source.block_size)
        self.num_batches = 0
        """Batches applied (for tests and logs)."""
        self.num_dropped = 0
        """Messages and events dropped as unreadable."""
        self._listener = listener
        self._call_soon = call_soon_threadsafe
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_seq: int | None = None

    @property
    def block_size(self) -> int | None:
        return self.translator.block_size

    def start(self) -> None:
        """Open the socket (raises on a bad endpoint) and start reading."""
        try:
            import zmq
        except ImportError:
            raise RuntimeError(KV_EVENTS_MISSING) from None
        socket: Any = zmq.Context.instance().socket(zmq.SUB)
        try:
            socket.setsockopt(zmq.SUBSCRIBE, b"")
            socket.setsockopt(zmq.LINGER, 0)
            if "*" in self.source.endpoint:
                socket.bind(self.source.endpoint)
            else:
                socket.connect(self.source.endpoint)
        except zmq.ZMQError as exc:
            socket.close()
            raise ValueError(f"KV events endpoint {self.source.endpoint!r}: {exc}") from None
        self._thread = threading.Thread(
            target=self._run, args=(socket,), name=f"kv-events-{self.engine_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def clear(self) -> None:
        """Forget the engine's blocks (it restarted with an empty cache)."""
        with self._lock:
            removed = self.translator.clear()
        if removed:  # after the hand-offs already queued, so none of them brings a block back
            self._call_soon(self._listener, [], removed)

    def _run(self, socket: Any) -> None:
        import zmq

        try:
            while not self._stop.is_set():
                if not socket.poll(POLL_MS):
                    continue
                self.handle(socket.recv_multipart())
        except zmq.ZMQError as exc:
            if not self._stop.is_set():
                log.error("KV events of engine %s stopped: %s", self.engine_id, exc)
        finally:
            socket.close(linger=0)

    def handle(self, frames: Sequence[bytes]) -> None:
        """Apply one message and hand its hashes to the listener; drop what is unreadable."""
        try:
            seq, events = decode_batch(frames)
        except BadKVEvent as exc:
            self.num_dropped += 1
            log.warning("dropped a KV event message from engine %s: %s", self.engine_id, exc)
            return
        with self._lock:
            delta = self.translator.apply(events)
        if delta.bad:
            self.num_dropped += len(delta.bad)
            log.warning(
                "dropped %d KV events from engine %s: %s",
                len(delta.bad),
                self.engine_id,
                delta.bad[0],
            )
        if self._last_seq is not None and seq != self._last_seq + 1:
            log.info("KV events of engine %s: missed batches before #%d", self.engine_id, seq)
        self._last_seq = seq
        self.num_batches += 1
        if delta.stored or delta.removed:
            self._call_soon(self._listener, delta.stored, delta.removed)
