"""Deciding one request: the first rule whose actions and condition match wins.

Safety rule for conditions that fail at run time (a field this request lacks, a type mismatch):
the failing rule does not match, the error is reported in `PolicyDecision.errors` and logged, and
if any rule failed before the one that matched, a `pass` or `approve` from that later rule is
turned into a review with the defaults. A rule that failed might have been the one meant to stop
this request, so a failure must never end in an automatic approval. A later `reject` or `review`
stands: neither approves anything.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from api.approvals.enums import PolicyVerdict
from api.facts.names import stripe_variable
from api.policy.conditions import Condition, ConditionFailed
from api.policy.models import Decision, Defaults, Rule, format_duration
from api.policy.totals import Totals, empty_totals, totals_variables

logger = logging.getLogger(__name__)

_REQUEST_FIELDS_ABSENT = {"riskLevel": None, "priority": None, "agentName": None, "metadata": {}}


@dataclass(frozen=True, kw_only=True)
class PolicyInput:
    action: str
    details: Mapping[str, Any]
    now: datetime  # aware; any zone, converted to UTC
    request: Mapping[str, Any] = field(default_factory=dict)  # riskLevel, priority, agentName, metadata
    connection: Mapping[str, Any] = field(default_factory=dict)  # id, name
    totals: Totals | Mapping[str, Any] = field(default_factory=empty_totals)
    # Stripe's facts as `stripe_variable()` shapes them; absent: nothing was verified.
    stripe: Mapping[str, Any] = field(default_factory=lambda: stripe_variable(None))

    def check(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("PolicyInput.now must be timezone-aware")

    def variables(self) -> dict[str, Any]:
        """What a condition sees. Absent request fields read as null (metadata as {})."""
        self.check()
        return {
            "action": self.action,
            "details": dict(self.details),
            "request": {**_REQUEST_FIELDS_ABSENT, **{k: v for k, v in self.request.items() if v is not None}},
            "connection": dict(self.connection),
            "totals": totals_variables(self.totals),
            "stripe": dict(self.stripe),
            # The CEL runtime takes UTC timestamps only; zones come in through `getHours("…")`.
            "now": self.now.astimezone(UTC),
        }


@dataclass(frozen=True)
class PolicyDecision:
    decision: Decision
    rule: str | None  # the rule that decided; None when no rule matched or a failure forced review
    note: str | None  # the rule's note: the decision note of approve and reject, a reason for review
    approvers: list[str]
    required_approvals: int
    expires_in: timedelta
    policy_version: str
    condition: str | None = None  # the deciding rule's `when`, for explaining it
    errors: list[str] = field(default_factory=list)

    def explain(self) -> str:
        """One sentence for a reviewer or an operator: why this decision."""
        if self.errors and self.rule is None:
            return (f"A policy condition could not be evaluated for this request, so it needs review "
                    f"({self.errors[0]}).")
        if self.rule is None:
            return "No policy rule matched, so it needs review."
        because = f" ({self.condition.strip()})" if self.condition else ""
        verb = {PolicyVerdict.PASS: "lets it run at once", PolicyVerdict.APPROVE: "approves it",
                PolicyVerdict.REJECT: "rejects it", PolicyVerdict.REVIEW: f"asks for {self.required_approvals} approval"
                          f"{'s' if self.required_approvals > 1 else ''} within "
                          f"{format_duration(self.expires_in)}"}[self.decision]
        return f"Policy rule “{self.rule}”{because} {verb}."


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    condition: Condition | None

    def applies_to(self, action: str) -> bool:
        return self.rule.actions is None or action in self.rule.actions


@dataclass(frozen=True)
class Policy:
    version: str  # sha256 of the file's bytes, or "builtin-…"
    defaults: Defaults
    rules: tuple[CompiledRule, ...]
    source: str  # the file's path as given, or "<builtin>"
    warnings: tuple[str, ...] = ()
    # Whether any condition reads `totals`. Computed once here so intake can skip the velocity
    # queries (several aggregates over the approvals table) for the many policies that never use them.
    reads_totals: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        reads = any(compiled.condition is not None and "totals" in compiled.condition.variables()
                    for compiled in self.rules)
        object.__setattr__(self, "reads_totals", reads)  # frozen: set once, at construction

    def evaluate(self, request: PolicyInput) -> PolicyDecision:
        request.check()
        # Built when a condition first needs them: most requests meet no rule with a condition
        # (the built-in policy has none), and building them copied every input on every request.
        variables: dict[str, Any] | None = None
        errors: list[str] = []
        for compiled in self.rules:
            if not compiled.applies_to(request.action):
                continue
            rule = compiled.rule
            condition = compiled.condition
            if condition is not None and variables is None:
                variables = request.variables()
            try:
                matched = condition is None or condition.matches(variables or {})
            except ConditionFailed as error:
                errors.append(f"rule {rule.name!r}: {error}")
                logger.warning("policy %s: rule %r failed for action %s: %s",
                               self.version[:12], rule.name, request.action, error)
                continue
            if matched:
                if errors and rule.decision in (PolicyVerdict.PASS, PolicyVerdict.APPROVE):
                    break  # an earlier rule could not be checked: do not approve on its silence
                return self._decide(rule, compiled.condition, errors)
        return self._review_with_defaults(errors)

    def describe_rule(self, name: str) -> str | None:
        for compiled in self.rules:
            if compiled.rule.name == name:
                rule = compiled.rule
                when = f" when {rule.when.strip()}" if rule.when else ""
                actions = ", ".join(rule.actions) if rule.actions else "any action"
                return f"{rule.name}: {rule.decision} {actions}{when}"
        return None

    def _decide(self, rule: Rule, condition: Condition | None, errors: list[str]) -> PolicyDecision:
        return PolicyDecision(
            decision=rule.decision, rule=rule.name, note=rule.note,
            approvers=list(rule.approvers or self.defaults.approvers),
            required_approvals=rule.required_approvals or self.defaults.required_approvals,
            expires_in=rule.expires_in or self.defaults.expires_in,
            policy_version=self.version, condition=condition.source if condition else None,
            errors=errors)

    def _review_with_defaults(self, errors: list[str]) -> PolicyDecision:
        return PolicyDecision(
            decision=PolicyVerdict.REVIEW, rule=None, note=None, approvers=list(self.defaults.approvers),
            required_approvals=self.defaults.required_approvals, expires_in=self.defaults.expires_in,
            policy_version=self.version, errors=errors)
