"""Load-time check of what a CEL condition reads: top-level names, `x.field` selections, functions.

The CEL bindings compile an expression and name its variables and functions, but expose no syntax
tree, so field selections are found by scanning the expression's tokens. The scan is deliberately
simple and only ever *refuses* what it recognises: it skips string literals (so `"a.b"` is not a
selection), reads every chain `name.field.field` that starts at a bare identifier, treats a name
followed by `(` as a function or method call, and knows the variables bound by the comprehension
macros (`items.all(i, i.quantity < 5)`), whose fields it cannot know and does not check.
Selections it cannot follow (`(details).x`, `details["x"]`) are left to run time, where a missing
field makes the rule fail safely (see `engine.py`).
"""

import difflib
import re
from collections.abc import Collection, Iterator, Mapping

from api.facts.names import STRIPE_FIELDS
from api.policy.catalogue import CONNECTION_FIELDS, REQUEST_FIELDS, VARIABLES
from api.policy.totals import TOTALS_FIELDS

# Functions the CEL runtime provides (macros such as `has` and `all` are not function calls),
# with the time-zone forms added in `conditions.py`.
KNOWN_FUNCTIONS = frozenset({
    "contains", "size", "startsWith", "endsWith", "matches", "duration", "timestamp", "string",
    "bytes", "double", "int", "uint", "type", "dyn", "getFullYear", "getMonth", "getDayOfYear",
    "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes", "getSeconds",
    "getMilliseconds",
})
# Type names CEL lets an expression use as values (`type(x) == int`).
_TYPE_NAMES = frozenset({"int", "uint", "double", "string", "bytes", "bool", "list", "map",
                         "null_type", "type", "dyn"})
_MACROS_BINDING_A_NAME = frozenset({"all", "exists", "exists_one", "map", "filter"})
_KEYWORDS = frozenset({"true", "false", "null", "in"})

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+[uU]?|\d+(\.\d+)?([eE][+-]?\d+)?[uU]?|\.\d+([eE][+-]?\d+)?")
_STRING_PREFIX = frozenset({"r", "R", "b", "B", "rb", "rB", "Rb", "RB", "br", "bR", "Br", "BR"})


def _tokens(source: str) -> Iterator[str]:
    """Identifiers, '.', '(' and ',' as themselves; every literal and other symbol as '#'."""
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char.isspace():
            i += 1
        elif source.startswith("//", i):  # a comment runs to the end of the line
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif (number := _NUMBER.match(source, i)) and (char.isdigit() or source[i + 1:i + 2].isdigit()):
            yield "#"
            i = number.end()
        elif ident := _IDENT.match(source, i):
            i = ident.end()
            if ident.group() in _STRING_PREFIX and source[i:i + 1] in ("'", '"'):
                i = _skip_string(source, i, raw="r" in ident.group().lower())
                yield "#"
            else:
                yield ident.group()
        elif char in ("'", '"'):
            i = _skip_string(source, i, raw=False)
            yield "#"
        else:
            yield char if char in ".()," else "#"
            i += 1


def _skip_string(source: str, start: int, *, raw: bool) -> int:
    quote = source[start:start + 3] if source[start:start + 3] in ('"""', "'''") else source[start]
    i = start + len(quote)
    while i < len(source) and not source.startswith(quote, i):
        i += 1 if raw or source[i] != "\\" else 2
    return i + len(quote)


def _selections(tokens: list[str]) -> Iterator[list[str]]:
    """Each chain `root.f1.f2` starting at a bare identifier; a trailing method name is dropped."""
    for start, token in enumerate(tokens):
        if not _IDENT.fullmatch(token) or token in _KEYWORDS or tokens[start - 1:start] == ["."]:
            continue
        end = start + 1
        while tokens[end:end + 1] == ["."] and end + 1 < len(tokens) and _IDENT.fullmatch(tokens[end + 1]):
            end += 2
        chain = tokens[start:end:2]
        if tokens[end:end + 1] == ["("]:
            chain = chain[:-1]  # `f(…)` or `x.method(…)`: a call, not a field
        if chain:
            yield chain


def _bound_names(tokens: list[str]) -> set[str]:
    """Names introduced by `.all(x, …)`, `.map(x, …)` and the other comprehension macros."""
    return {tokens[i + 3] for i in range(len(tokens) - 4)
            if tokens[i] == "." and tokens[i + 1] in _MACROS_BINDING_A_NAME
            and tokens[i + 2] == "(" and tokens[i + 4] == ","}


def _suggest(name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_chain(chain: list[str], details_fields: Collection[str] | None) -> str | None:
    root, fields = chain[0], chain[1:]
    if not fields:
        return None
    if root in ("action", "now"):
        return f"'{root}.{fields[0]}': {root!r} has no fields"
    if root == "stripe":
        return _check_stripe(fields)
    allowed: Mapping[str, Collection[str] | None] = {
        "details": details_fields, "request": REQUEST_FIELDS, "connection": CONNECTION_FIELDS,
        "totals": TOTALS_FIELDS.keys(),
    }
    known = allowed[root]
    if known is not None and fields[0] not in known:
        owner = "the details of the rule's actions" if root == "details" else repr(root)
        return f"'{root}.{fields[0]}' is not a field of {owner}{_suggest(fields[0], known)}"
    if root == "totals" and len(fields) > 1:
        names = TOTALS_FIELDS[fields[0]]
        if fields[1] not in names:
            return f"'totals.{fields[0]}.{fields[1]}' is not a declared total{_suggest(fields[1], names)}"
    return None


def _check_stripe(fields: list[str]) -> str | None:
    name = fields[0]
    if name not in STRIPE_FIELDS:
        return (f"'stripe.{name}' is not a Stripe fact{_suggest(name, STRIPE_FIELDS)}; "
                f"the facts are: {', '.join(sorted(STRIPE_FIELDS))}")
    known = STRIPE_FIELDS[name]
    if len(fields) > 1 and known is not None and fields[1] not in known:
        return (f"'stripe.{name}.{fields[1]}' is not a fact of stripe.{name}{_suggest(fields[1], known)}; "
                f"its fields are: {', '.join(sorted(known))}")
    return None


def check_references(source: str, variables: Collection[str], functions: Collection[str],
                     details_fields: Collection[str] | None) -> list[str]:
    """Problems with what `source` reads; `variables` and `functions` are the compiler's lists.

    `details_fields` is the union of the rule's actions' details fields, or None when any field
    may exist (a rule naming an action outside the catalogue, whose details we cannot know).
    """
    tokens = list(_tokens(source))
    bound = _bound_names(tokens)
    problems = [f"undeclared reference to {name!r}{_suggest(name, VARIABLES)}"
                for name in sorted(set(variables) - VARIABLES - bound - _TYPE_NAMES)]
    problems += [f"unknown function {name!r}{_suggest(name, KNOWN_FUNCTIONS)}"
                 for name in sorted(functions)
                 if name[0] not in "_@!-" and name not in KNOWN_FUNCTIONS]
    for chain in _selections(tokens):
        if chain[0] in VARIABLES and chain[0] not in bound:
            problem = _check_chain(chain, details_fields)
            if problem and problem not in problems:
                problems.append(problem)
    return problems
