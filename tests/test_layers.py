"""The layers of DESIGN.md hold: the import-linter contracts in pyproject.toml are all kept.

The same check is ``make lint`` (``lint-imports``); running it here puts it in CI too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests._deps import require

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    require("importlinter", install="pip install 'autellix[dev]'")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
