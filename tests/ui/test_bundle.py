"""The committed bundle under ``autellix_backend/server/ui/static`` is what ``ui/`` builds:
rebuild it from the sources and the lock file (``npm ci``; the npm registry is reachable
wherever the suite runs) and compare byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autellix_backend.server.ui import STATIC_DIR
from tests._deps import missing

UI_SOURCES = Path(__file__).resolve().parents[2] / "ui"

pytestmark = pytest.mark.timeout(600)


def test_committed_bundle_matches_the_sources(tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing("Node.js and npm are not installed (the UI bundle check needs them)")
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=UI_SOURCES,
        check=True,
        timeout=400,
    )
    subprocess.run(
        ["node", "build.mjs", "--outdir", str(tmp_path)], cwd=UI_SOURCES, check=True, timeout=120
    )
    built = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in STATIC_DIR.iterdir())
    assert built == committed
    stale = [n for n in built if (tmp_path / n).read_bytes() != (STATIC_DIR / n).read_bytes()]
    assert stale == [], f"rebuild the UI (make ui) and commit: {stale} differ from the sources"


def test_wheel_ships_the_bundle(tmp_path: Path) -> None:
    """``pip install`` gets the page: the wheel holds the bundle and its licences."""
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, str(UI_SOURCES.parent), "-w", str(tmp_path)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("autellix-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for file in STATIC_DIR.iterdir():
        assert f"autellix_backend/server/ui/static/{file.name}" in names
