"""``python -m autellix_backend`` is the ``autellix`` command."""

from __future__ import annotations

from autellix_backend.cli import main

main()
