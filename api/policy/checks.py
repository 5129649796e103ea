"""Checks that span fields or rules, and the compilation of every condition.

Each problem is a `(path, message)` pair; the loader turns the path into a file line.
"""

import difflib
from collections.abc import Collection
from dataclasses import dataclass, field

from api.approvals.enums import PolicyVerdict
from api.policy.catalogue import ALL_DETAILS_FIELDS, CATALOGUE_ACTIONS, DETAILS_FIELDS, READ_ONLY_ACTIONS
from api.policy.conditions import Condition, ConditionSyntaxError, compile_condition
from api.policy.models import PolicyFile, Rule
from api.policy.references import check_references
from api.policy.reviewing import DEFAULT_BULK_CEILING, MONEY_ACTIONS, condition_amount_bound

Path = tuple[str | int, ...]

_REVIEW_ONLY = ("approvers", "required_approvals", "expires_in", "bulk_ceiling", "escalate_after", "escalate_to",
                "business_hours")


@dataclass
class CheckResult:
    problems: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    conditions: dict[int, Condition] = field(default_factory=dict)  # rule index → its `when`
    # A syntax error's line inside a multi-line condition, added to the `when:` line.
    line_offsets: dict[Path, int] = field(default_factory=dict)


def check_policy(policy: PolicyFile) -> CheckResult:
    result = CheckResult()
    defaults = policy.defaults
    if defaults.expires_in > defaults.max_expires_in:
        result.problems.append((("defaults", "expires_in"), "is longer than defaults.max_expires_in"))
    first_line_of: dict[str, int] = {}
    for index, rule in enumerate(policy.rules):
        here: Path = ("rules", index)
        key = rule.name.casefold()
        if key in first_line_of:
            result.problems.append(((*here, "name"), f"duplicate rule name {rule.name!r} "
                                    f"(first used by rules[{first_line_of[key]}])"))
        first_line_of.setdefault(key, index)
        _check_rule(rule, index, policy, result)
    return result


def _check_rule(rule: Rule, index: int, policy: PolicyFile, result: CheckResult) -> None:
    here: Path = ("rules", index)
    problems = result.problems
    if rule.actions == []:
        problems.append(((*here, "actions"), "an empty list matches no action; leave `actions` out "
                                             "to match any action"))
    for position, action in enumerate(rule.actions or ()):
        if action not in CATALOGUE_ACTIONS:
            close = difflib.get_close_matches(action, sorted(CATALOGUE_ACTIONS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            result.warnings.append(((*here, "actions", position),
                                    f"{action!r} is not a catalogue action; {hint}the rule will only "
                                    f"match custom requests (execute: false) of that name"))
    if rule.decision == PolicyVerdict.PASS:
        writes = sorted(set(rule.actions or ()) - READ_ONLY_ACTIONS)
        if rule.actions is None or writes:
            what = ", ".join(writes) if writes else "any action (no `actions` list)"
            problems.append(((*here, "decision"),
                             f"`pass` runs an action at once without review, which only read-only "
                             f"lookups may do ({', '.join(sorted(READ_ONLY_ACTIONS))}); this rule covers "
                             f"{what}: use `approve` to approve automatically, recorded as the rule's "
                             f"decision"))
    if rule.decision == PolicyVerdict.REJECT and rule.note is None:
        problems.append(((*here, "note"), "a reject rule needs a `note`: it is what the agent is told"))
    if rule.decision != PolicyVerdict.REVIEW:
        for name in _REVIEW_ONLY:
            if getattr(rule, name) is not None:
                problems.append(((*here, name), f"only a review rule takes `{name}` "
                                                f"(this rule decides '{rule.decision}' itself)"))
    if rule.bulk:
        _check_bulk(rule, here, problems)
    if rule.expires_in is not None and rule.expires_in > policy.defaults.max_expires_in:
        problems.append(((*here, "expires_in"), "is longer than defaults.max_expires_in"))
    if rule.when is not None:
        _check_condition(rule, index, result)


def _check_bulk(rule: Rule, here: Path, problems: list[tuple[Path, str]]) -> None:
    """`bulk: true` lets one click approve a whole group: never a group of large money movements."""
    if rule.decision != PolicyVerdict.REVIEW:
        problems.append(((*here, "bulk"), f"only a review rule takes `bulk` (this rule decides "
                                          f"'{rule.decision}' itself)"))
        return
    moves_money = rule.actions is None or bool(MONEY_ACTIONS.intersection(rule.actions))
    if not moves_money or rule.bulk_ceiling is not None:
        return
    bound = condition_amount_bound(rule.when)
    if bound is None or bound > DEFAULT_BULK_CEILING:
        problems.append(((*here, "bulk"), f"`bulk: true` on an action that moves money needs `when` to hold "
                                          f"`details.amount_cents <= N` with N at most {DEFAULT_BULK_CEILING} "
                                          f"(the default bulk ceiling), or a `bulk_ceiling` of its own"))


def _details_fields(actions: list[str] | None) -> Collection[str] | None:
    """The fields `details.<field>` may name, or None when they cannot be known."""
    if actions is None:
        return ALL_DETAILS_FIELDS  # any action: a field of some catalogue action
    if any(action not in CATALOGUE_ACTIONS for action in actions):
        return None  # a custom action's details have no declared shape
    return frozenset().union(*(DETAILS_FIELDS[action] for action in actions))


def _check_condition(rule: Rule, index: int, result: CheckResult) -> None:
    where: Path = ("rules", index, "when")
    if rule.when is None or not rule.when.strip():
        result.problems.append((where, "is empty; leave `when` out to match every request"))
        return
    try:
        condition = compile_condition(rule.when.rstrip())  # so an error "at end" stays on the last line
    except ConditionSyntaxError as error:
        result.problems.append((where, str(error)))
        result.line_offsets[where] = error.line - 1
        return
    found = check_references(rule.when, condition.variables(), condition.functions(),
                             _details_fields(rule.actions))
    result.problems += [(where, problem) for problem in found]
    if not found:
        result.conditions[index] = condition
