"""Priority policies, one module each, chosen by ``Policy`` through ``make_policy``."""

from __future__ import annotations

from autellix_backend.core.config import Policy
from autellix_backend.core.policies.atlas import ATLASExactPolicy, ATLASPolicy
from autellix_backend.core.policies.base import PriorityPolicy
from autellix_backend.core.policies.fcfs import FCFSPolicy
from autellix_backend.core.policies.mlfq import MLFQPolicy
from autellix_backend.core.policies.plas import PLASPolicy
from autellix_backend.core.policies.srpt import SRPTPolicy

POLICIES: dict[Policy, type[PriorityPolicy]] = {
    cls.name: cls
    for cls in (FCFSPolicy, MLFQPolicy, PLASPolicy, ATLASPolicy, ATLASExactPolicy, SRPTPolicy)
}


def make_policy(policy: Policy | str) -> PriorityPolicy:
    """Instantiate the policy named ``policy`` (raises ``UnknownPolicyError``)."""
    return POLICIES[Policy.parse(policy)]()


__all__ = [
    "POLICIES",
    "ATLASExactPolicy",
    "ATLASPolicy",
    "FCFSPolicy",
    "MLFQPolicy",
    "PLASPolicy",
    "PriorityPolicy",
    "SRPTPolicy",
    "make_policy",
]
