"""What a policy would have decided on stored requests (`cheqpoint policy replay`)."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from api.approvals.enums import PolicyVerdict
from api.policy.engine import Policy, PolicyDecision, PolicyInput

NO_RULE = "(no rule: defaults)"


@dataclass(frozen=True)
class ReplayChange:
    approval_id: str
    action: str
    old_outcome: str
    old_rule: str | None
    new_outcome: str
    new_rule: str | None


@dataclass
class ReplayReport:
    policy_version: str
    total: int = 0
    # rule name (or NO_RULE) → how many requests it decided, in the policy's rule order
    per_rule: dict[str, int] = field(default_factory=dict)
    per_decision: Counter[str] = field(default_factory=Counter)
    changes: list[ReplayChange] = field(default_factory=list)  # the outcome differs from the stored one
    errors: list[tuple[str, str]] = field(default_factory=list)  # (approval id, condition failure)

    @classmethod
    def start(cls, policy: Policy) -> "ReplayReport":
        """An empty report listing every rule of `policy`, so rules that decide nothing show 0."""
        return cls(policy_version=policy.version,
                   per_rule={compiled.rule.name: 0 for compiled in policy.rules} | {NO_RULE: 0})

    def add(self, approval_id: str, action: str, decision: PolicyDecision, old_outcome: str,
            old_rule: str | None) -> None:
        """Count one request (callers reading many from a database add them as they go)."""
        self.total += 1
        self.per_rule[decision.rule or NO_RULE] += 1
        self.per_decision[decision.decision] += 1
        self.errors += [(approval_id, error) for error in decision.errors]
        if decision.decision != old_outcome:
            self.changes.append(ReplayChange(approval_id, action, old_outcome, old_rule,
                                             decision.decision, decision.rule))

    def render(self) -> str:
        lines = [f"Replayed {self.total} request{'s' if self.total != 1 else ''} "
                 f"against policy {self.policy_version[:16]}.", ""]
        rule_width = max([len("rule"), *(len(name) for name in self.per_rule)])
        lines.append(f"{'rule':<{rule_width}}  {'requests':>8}")
        lines += [f"{name:<{rule_width}}  {count:>8}" for name, count in self.per_rule.items()]
        lines.append("")
        lines.append("decisions: " + ", ".join(f"{decision} {self.per_decision[decision]}"
                                               for decision in PolicyVerdict))
        lines.append("")
        if not self.changes:
            lines.append("No outcome would change.")
        else:
            lines.append(f"Outcome would change for {len(self.changes)} request"
                         f"{'s' if len(self.changes) != 1 else ''}:")
            header = ("approval", "action", "was", "now", "rule now")
            rows = [(c.approval_id, c.action, _outcome(c.old_outcome, c.old_rule),
                     c.new_outcome, c.new_rule or NO_RULE) for c in self.changes]
            widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
            lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                      for row in [header, *rows]]
        if self.errors:
            failed = len({approval_id for approval_id, _ in self.errors})
            lines += ["", f"Conditions could not be evaluated for {failed} request{'s' if failed != 1 else ''} "
                          f"(such a rule does not match, and nothing after it is approved):"]
            lines += [f"{approval_id}: {error}" for approval_id, error in self.errors]
        return "\n".join(lines) + "\n"


def _outcome(outcome: str, rule: str | None) -> str:
    return f"{outcome} ({rule})" if rule else outcome


def replay(policy: Policy, inputs: Iterable[tuple[str, PolicyInput, str, str | None]]) -> ReplayReport:
    """`inputs`: (approval id, the request as it was, the stored decision — one of pass, approve,
    reject, review — and the rule that made it). Counts what `policy` would decide instead."""
    report = ReplayReport.start(policy)
    for approval_id, request, old_outcome, old_rule in inputs:
        report.add(approval_id, request.action, policy.evaluate(request), old_outcome, old_rule)
    return report
