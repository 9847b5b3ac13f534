"""The tracing UI's built front end (``ui/`` at the repository root holds its sources).

``static/`` is produced by ``npm run build`` in ``ui/`` and committed, so the service serves
the page without Node; ``tests/ui/test_bundle.py`` checks it matches the sources.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
"""``index.html``, ``app.js``, ``app.css`` and ``THIRD_PARTY_LICENSES.txt``."""
