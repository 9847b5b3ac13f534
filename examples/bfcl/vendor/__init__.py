"""BFCL's executable tool classes (vendored from bfcl-eval, Apache-2.0; see ../NOTICE)."""

from typing import Any

from .gorilla_file_system import GorillaFileSystem
from .message_api import MessageAPI
from .posting_api import TwitterAPI
from .ticket_api import TicketAPI

CLASSES: dict[str, type[Any]] = {
    "GorillaFileSystem": GorillaFileSystem,
    "MessageAPI": MessageAPI,
    "TwitterAPI": TwitterAPI,
    "TicketAPI": TicketAPI,
}
