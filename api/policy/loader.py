"""Policy file → `Policy`, with every problem reported as `FILE:LINE: where: what`."""

import hashlib
import logging
from collections.abc import Sequence
from os import PathLike
from typing import Any

from pydantic import ValidationError

from api.approvals.enums import PolicyVerdict
from api.policy.catalogue import READ_ONLY_ACTIONS
from api.policy.checks import CheckResult, check_policy
from api.policy.engine import CompiledRule, Policy
from api.policy.errors import PolicyError
from api.policy.models import Defaults, PolicyFile, Rule
from api.policy.yaml_lines import LocatedData, Path, YamlProblem, load_located

logger = logging.getLogger(__name__)

BUILTIN_VERSION = "builtin-1"  # change it whenever `default_policy` changes


def load_policy(path: str | PathLike[str], default_approvers: Sequence[str] = ()) -> Policy:
    """Load and check a policy file. `default_approvers` (CHEQPOINT_APPROVERS) stand in when the
    file's `defaults.approvers` is empty."""
    name = str(path)
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as error:
        raise PolicyError(f"{name}: cannot read the policy file: {error.strerror}") from error
    return parse_policy(content, name, default_approvers)


def parse_policy(content: bytes, name: str = "<policy>", default_approvers: Sequence[str] = ()) -> Policy:
    version = hashlib.sha256(content).hexdigest()
    try:
        located = load_located(content.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise PolicyError(f"{name}:1: the file is not UTF-8 text") from error
    except YamlProblem as problem:
        raise PolicyError(f"{name}:{problem.line}: {problem}") from problem
    if not isinstance(located.data, dict):
        found = "an empty file" if located.data is None else f"a {type(located.data).__name__}"
        raise PolicyError(f"{name}:1: a policy must be a mapping with `rules` (and optionally "
                          f"`defaults`), not {found}")
    try:
        policy_file = PolicyFile.model_validate(located.data)
    except ValidationError as error:
        raise PolicyError([_pydantic_problem(name, located, issue) for issue in error.errors()]) from None
    checked = check_policy(policy_file)
    if checked.problems:
        raise PolicyError([_problem(name, located, path, message, checked)
                           for path, message in checked.problems])
    warnings = tuple(_problem(name, located, path, message, checked) for path, message in checked.warnings)
    for warning in warnings:
        logger.warning("policy warning: %s", warning)
    defaults = policy_file.defaults
    if not defaults.approvers and default_approvers:
        defaults = defaults.model_copy(update={"approvers": list(default_approvers)})
    rules = tuple(CompiledRule(rule, checked.conditions.get(index))
                  for index, rule in enumerate(policy_file.rules))
    return Policy(version=version, defaults=defaults, rules=rules, source=name, warnings=warnings)


def default_policy(approvers: Sequence[str] = ()) -> Policy:
    """Used without CHEQPOINT_POLICY_FILE: read-only lookups pass, everything else is reviewed by
    one of `approvers` within 24 hours."""
    reads = Rule(name="read-only lookups", actions=sorted(READ_ONLY_ACTIONS), decision=PolicyVerdict.PASS)
    return Policy(version=BUILTIN_VERSION, defaults=Defaults(approvers=list(approvers)),
                  rules=(CompiledRule(reads, None),), source="<builtin>")


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(name: str, located: LocatedData, path: Path, message: str, checked: CheckResult) -> str:
    line = located.line_of(path) + checked.line_offsets.get(path, 0)
    if path in located.block_scalars and path[-1] == "when":
        line += 1  # a `|` or `>` condition starts on the line after `when:`: point into the expression
    where = format_path(path)
    return f"{name}:{line}: {where}: {message}" if where else f"{name}:{line}: {message}"


_MESSAGES = {
    "missing": "is required",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "greater_than_equal": "must be at least {ge}",
    "string_pattern_mismatch": "is not a Slack user or user-group ID (U…, W… or S…)",
    "string_too_short": "must not be empty",
    "int_type": "must be a whole number",
    "list_type": "must be a list",
    "string_type": "must be text",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _pydantic_problem(name: str, located: LocatedData, issue: Any) -> str:
    path: Path = tuple(issue["loc"])
    kind = issue["type"]
    if kind == "extra_forbidden":
        parent = path[:-1]
        allowed = _allowed_keys(parent)
        message = f"unknown key {path[-1]!r} (allowed: {', '.join(allowed)})"
    elif kind == "value_error":
        message = str(issue["ctx"]["error"])
    elif kind in _MESSAGES:
        message = _MESSAGES[kind].format(**{k: str(v) for k, v in issue.get("ctx", {}).items()})
    else:
        message = issue["msg"]
    where = format_path(path)
    return f"{name}:{located.line_of(path)}: {where}: {message}" if where else \
        f"{name}:{located.line_of(path)}: {message}"


def _allowed_keys(parent: Path) -> list[str]:
    if parent == ():
        return list(PolicyFile.model_fields)
    if parent == ("defaults",):
        return list(Defaults.model_fields)
    return list(Rule.model_fields)  # the only other mapping: ("rules", index)
