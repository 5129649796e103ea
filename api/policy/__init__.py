"""The policy engine: which requests pass, are approved or rejected by a rule, or go to review.

See docs/policy.md for the file format and the reasoning behind its checks.
"""

from api.policy.engine import Policy, PolicyDecision, PolicyInput
from api.policy.errors import PolicyError
from api.policy.loader import default_policy, load_policy, parse_policy
from api.policy.replay import ReplayChange, ReplayReport, replay
from api.policy.totals import ActionTotals, ConnectionTotals, CustomerTotals, Totals, empty_totals

__all__ = [
    "ActionTotals",
    "ConnectionTotals",
    "CustomerTotals",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "PolicyInput",
    "ReplayChange",
    "ReplayReport",
    "Totals",
    "default_policy",
    "empty_totals",
    "load_policy",
    "parse_policy",
    "replay",
]
