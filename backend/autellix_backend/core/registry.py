"""The one registry style: an enum names the kinds, a dict keyed by it holds their factories.

Policies, balancers, engine kinds and cost profiles are all chosen this way (Vidur's and
vLLM's style): ``parse_kind`` turns a user's spelling into the enum member, with one clear
error listing the known names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

K = TypeVar("K", bound=StrEnum)


def parse_kind(
    kind: type[K], name: str | K, *, what: str, error: type[Exception], plural: str = ""
) -> K:
    """The member of ``kind`` called ``name`` (case-insensitive; ``-`` and ``_`` alike).

    >>> from autellix_backend.core.config import Policy
    >>> parse_kind(Policy, "ATLAS-exact", what="policy", error=ValueError)
    <Policy.ATLAS_EXACT: 'atlas_exact'>
    """
    if isinstance(name, kind):
        return name
    key = str(name).strip().lower().replace("-", "_")
    for member in kind:
        if member.value.replace("-", "_") == key:
            return member
    known = ", ".join(m.value for m in kind)
    raise error(f"unknown {what} {name!r}; known {plural or what + 's'}: {known}")
