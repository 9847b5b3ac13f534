"""Opening the UI in the test browser, and reading back what it shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.ui.conftest import KEYS

TIMEOUT_MS = 15_000


@dataclass(slots=True)
class UiPage:
    """A browser tab on the UI, with every script error and dialog it raised."""

    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def wait_for(self, script: str, arg: Any = None) -> None:
        self.page.wait_for_function(script, arg=arg, timeout=TIMEOUT_MS)

    def wait_refreshed(self) -> None:
        """Wait until the view on screen has drawn one more answer of the API."""
        seen = self.evaluate("window.autellixUI.refreshes")
        self.wait_for("n => window.autellixUI.refreshes > n", seen)

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.dialogs == [], self.dialogs


def open_ui(
    browser: Any, base_url: str, key: str, route: str = "/programs", **params: str
) -> UiPage:
    """Open ``/ui#<route>`` as ``key``'s owner (the key travels in the fragment once)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    ui = UiPage(page)
    page.on("pageerror", lambda exc: ui.errors.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: ui.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )

    def on_dialog(dialog: Any) -> None:
        ui.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    query = urlencode({**params, "key": KEYS[key]})
    page.goto(f"{base_url}/ui#{route}?{query}")
    ui.wait_for("() => window.autellixUI && window.autellixUI.refreshes > 0")
    return ui


def program_page(browser: Any, base_url: str, key: str, program_id: str, owner: str) -> UiPage:
    ui = open_ui(browser, base_url, key, "/program", id=program_id, owner=owner)
    ui.wait_for("() => window.autellixUI.view.dag.counts().nodes > 0")
    return ui
