"""Stand-ins for bfcl-eval's ``long_context`` constants, used only when a scenario is loaded
with ``long_context=True`` (which the examples never do)."""

FILE_CONTENT_EXTENSION = ""
FILES_TAIL_USED: list[str] = []
POPULATE_FILE_EXTENSION: list[str] = []
