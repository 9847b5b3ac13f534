"""``autellix calibrate``: measure the real engine, write a simulator profile, check it."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from autellix_backend.core import Policy, SchedulerConfig

if TYPE_CHECKING:
    from autellix_backend.engines.base import EngineAdapter
    from autellix_backend.sim.profiles import LinearCostModel

BLOCK_SIZE = 32
MAX_BATCHED_TOKENS = 2048


def calibrate(
    out: Annotated[Path, typer.Option(help="Profile JSON to write.")] = Path(
        "cpu-tiny-calibrated.json"
    ),
    name: Annotated[str, typer.Option(help="Profile name inside the file.")] = "cpu-tiny-measured",
    model: Annotated[
        str | None, typer.Option(help="Weights to serve (default: the tiny model, dummy weights).")
    ] = None,
    max_num_seqs: Annotated[int, typer.Option(help="Engine batch size.")] = 4,
    kv_cache_mib: Annotated[int, typer.Option(help="Engine KV cache size in MiB.")] = 64,
    fidelity: Annotated[
        bool, typer.Option(help="Then replay a workload on the engine and the simulator.")
    ] = True,
    report: Annotated[
        Path | None, typer.Option(help="Also write the fit and fidelity figures as JSON here.")
    ] = None,
    outlier_mads: Annotated[
        float,
        typer.Option(help="Drop steps this many MADs slower than the fit (0 keeps all)."),
    ] = 5.0,
    repeats: Annotated[
        int,
        typer.Option(
            help="Fidelity repeats on one engine, each a short training replay whose steps "
            "scale the profile to the load of that moment, then the check's replay, simulated "
            "with that prediction and with the check's own steps' scale (0: one check with "
            "the unscaled profile)."
        ),
    ] = 0,
) -> None:
    """Measure step times on vLLM (prefill by length, decode by batch and context) and fit a
    simulator profile to them."""
    if repeats < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--repeats")
    kv_bytes = kv_cache_mib * 2**20
    outliers = outlier_mads if outlier_mads > 0 else None
    result = asyncio.run(
        _calibrate(out, name, model, max_num_seqs, kv_bytes, fidelity, outliers, repeats)
    )
    typer.echo(json.dumps(result, indent=2))
    if report is not None:
        report.write_text(json.dumps(result, indent=2) + "\n")


async def _calibrate(
    out: Path,
    name: str,
    model: str | None,
    max_num_seqs: int,
    kv_bytes: int,
    fidelity: bool,
    outlier_mads: float | None,
    repeats: int = 0,
) -> dict[str, Any]:
    from autellix_backend.calibration.fidelity import compare
    from autellix_backend.calibration.fit import fit_profile
    from autellix_backend.calibration.probes import DECODE_BATCHES, run_probes
    from autellix_backend.calibration.steps import read_step_log
    from autellix_backend.calibration.workloads import poisson_mix
    from autellix_backend.drivers.replay import replay
    from autellix_backend.engines.local_vllm import LocalVLLMEngine

    scheduler = SchedulerConfig(policy=Policy.PLAS)
    with tempfile.TemporaryDirectory(prefix="autellix-calibrate-") as tmp:
        log_path = Path(tmp) / "steps.jsonl"
        engine = LocalVLLMEngine(
            engine_id="calibrate",
            model=model,
            scheduler=scheduler,
            max_num_seqs=max_num_seqs,
            max_model_len=2048,
            block_size=BLOCK_SIZE,
            kv_cache_memory_bytes=kv_bytes,
            plugin_options={"step_log": str(log_path)},
            engine_args={"max_num_batched_tokens": MAX_BATCHED_TOKENS},
        )
        await engine.start()
        try:
            batches = [b for b in DECODE_BATCHES if b <= max_num_seqs]
            await run_probes(engine, decode_batches=batches)
            # Mixed steps (prefill chunks beside decodes), from a workload other than the
            # fidelity check's (another seed).
            await replay(engine, poisson_mix(rate=1.0, num_programs=8, seed=7), policy=Policy.PLAS)
            kv_tokens = kv_bytes // _kv_bytes_per_token(engine.engine_args()["model"])
            fit = fit_profile(
                read_step_log(log_path),
                name=name,
                kv_capacity_tokens=kv_tokens,
                description=f"fitted by autellix calibrate on {model or 'the tiny model'}",
                outlier_mads=outlier_mads,
            )
            out.write_text(json.dumps(fit.profile.to_dict(), indent=2) + "\n")
            result: dict[str, Any] = {
                "profile": str(out),
                "num_steps": fit.num_samples,
                "mean_step_s": fit.mean_step_s,
                "fit_mean_abs_error_s": fit.mean_abs_error_s,
            }
            check_args: dict[str, Any] = {
                "scheduler": scheduler,
                "max_num_seqs": max_num_seqs,
                "block_size": BLOCK_SIZE,
                "num_kv_blocks": kv_tokens // BLOCK_SIZE,
                "max_num_batched_tokens": MAX_BATCHED_TOKENS,
            }
            if fidelity and repeats == 0:
                check = await compare(
                    engine, poisson_mix(rate=1.0, num_programs=12), profile=str(out), **check_args
                )
                result["fidelity"] = {
                    "workload": "poisson_mix(rate=1.0, num_programs=12), PLAS",
                    "real_mean_s": check.real.mean_s,
                    "sim_mean_s": check.simulated.mean_s,
                    "mean_error": check.mean_error,
                    "real_p95_s": check.real.p95_s,
                    "sim_p95_s": check.simulated.p95_s,
                    "p95_error": check.p95_error,
                }
            runs: list[dict[str, Any]] = []
            for i in range(repeats if fidelity else 0):
                runs.append(await _repeat(engine, i, fit.profile, log_path, Path(tmp), check_args))
            if runs:
                result["repeats"] = {
                    "workload": "poisson_mix(rate=1.0, num_programs=12), PLAS",
                    "runs": runs,
                    **{
                        f"median_{key}": statistics.median(r[key] for r in runs)
                        for key in (
                            "mean_error",
                            "p95_error",
                            "window_mean_error",
                            "window_p95_error",
                        )
                    },
                }
        finally:
            await engine.aclose()
    return result


async def _repeat(
    engine: EngineAdapter,
    i: int,
    profile: LinearCostModel,
    log_path: Path,
    tmp: Path,
    check_args: dict[str, Any],
) -> dict[str, Any]:
    """One fidelity repeat: a 6-program training replay, then the check's 12-program replay.

    The check is simulated twice: with the profile scaled by the training replay's steps
    (a prediction, made before the check ran) and by the check's own steps (the engine's speed
    in the same window: what is left is the simulator's model of batching and scheduling).
    """
    from autellix_backend.calibration.fidelity import compare, simulate
    from autellix_backend.calibration.fit import load_scale, scaled
    from autellix_backend.calibration.steps import read_step_log
    from autellix_backend.calibration.workloads import poisson_mix
    from autellix_backend.drivers.replay import replay

    seen = len(read_step_log(log_path))
    await replay(
        engine,
        poisson_mix(rate=1.0, num_programs=6, seed=100 + i, prefix=f"train{i}-"),
        policy=Policy.PLAS,
    )
    scale = load_scale(profile, read_step_log(log_path)[seen:])
    before = tmp / f"profile-{i}.json"
    before.write_text(json.dumps(scaled(profile, scale).to_dict()))
    seen = len(read_step_log(log_path))
    programs = poisson_mix(rate=1.0, num_programs=12, prefix=f"check{i}-")
    check = await compare(engine, programs, profile=str(before), **check_args)
    window_scale = load_scale(profile, read_step_log(log_path)[seen:])
    window = tmp / f"profile-{i}-window.json"
    window.write_text(json.dumps(scaled(profile, window_scale).to_dict()))
    same = simulate(programs, profile=str(window), **check_args)
    real = check.real
    return {
        "load_scale": scale,
        "window_load_scale": window_scale,
        "real_mean_s": real.mean_s,
        "sim_mean_s": check.simulated.mean_s,
        "mean_error": check.mean_error,
        "real_p95_s": real.p95_s,
        "sim_p95_s": check.simulated.p95_s,
        "p95_error": check.p95_error,
        "window_sim_mean_s": same.mean_s,
        "window_mean_error": (same.mean_s - real.mean_s) / real.mean_s,
        "window_sim_p95_s": same.p95_s,
        "window_p95_error": (same.p95_s - real.p95_s) / real.p95_s,
    }


def _kv_bytes_per_token(model_dir: str) -> int:
    """K and V bytes per token from a local model's ``config.json`` (bf16 assumed if unset)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    heads = int(config.get("num_key_value_heads") or config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
    dtype_bytes = 4 if str(config.get("torch_dtype")) == "float32" else 2
    return 2 * int(config["num_hidden_layers"]) * heads * head_dim * dtype_bytes
