"""CEL conditions (`when:`), compiled once at load and evaluated per request.

Library: `common-expression-language` (import `cel`), Python bindings of the Rust `cel`
crate, rather than `cel-python` (`celpy`). Both implement the CEL specification; we chose `cel`
because it is already our declared dependency and actively released; it compiles once into a
reusable `Program` that evaluates natively (policy runs on every request); syntax errors carry
line and column; a program names the variables and functions it uses, which the load-time check
in `references.py` builds on; and run-time failures are ordinary Python exceptions with short
messages (`celpy` is pure Python over Lark, and its undefined-name error dumps the whole
activation). What `cel` lacks we add here: the standard time-zone forms of the timestamp
accessors (`now.getHours("Europe/Paris")`), absent from the Rust crate.
"""

import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The `cel` package imports its interactive CLI (typer, rich, prompt_toolkit, pygments: about 20 MB
# resident) as a side effect; the service only compiles and evaluates, so unless something already
# loaded the real module, an empty one stands in for it.
sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))
import cel  # noqa: E402


class ConditionSyntaxError(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line  # 1-based, within the expression


class ConditionFailed(Exception):
    """A condition that could not be evaluated for one request."""


_PARSE_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")


def _syntax_error(error: Exception) -> ConditionSyntaxError:
    match = _PARSE_ERROR.search(str(error))
    if match is None:
        return ConditionSyntaxError(f"CEL syntax error: {error}", 1)
    line, column, what = match.groups()
    what = what.removeprefix("Syntax error: ")
    return ConditionSyntaxError(f"CEL syntax error at column {column}: {what}", int(line))


# --- The time-zone forms of the timestamp accessors (CEL spec: `ts.getHours("America/New_York")`).
# The runtime keeps its native zero-argument forms (UTC) and calls these for the one-argument form.

_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _zone(name: str) -> tzinfo:
    if match := _OFFSET.match(name):
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def _local(moment: datetime, zone: str | None = None) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a timestamp, not {type(moment).__name__}")
    return moment.astimezone(UTC if zone is None else _zone(zone))


# CEL numbering: months, days of the year and of the month from 0; getDate from 1; Sunday is 0.
_ACCESSORS: dict[str, Callable[[datetime], int]] = {
    "getFullYear": lambda t: t.year,
    "getMonth": lambda t: t.month - 1,
    "getDayOfYear": lambda t: t.timetuple().tm_yday - 1,
    "getDayOfMonth": lambda t: t.day - 1,
    "getDate": lambda t: t.day,
    "getDayOfWeek": lambda t: (t.weekday() + 1) % 7,
    "getHours": lambda t: t.hour,
    "getMinutes": lambda t: t.minute,
    "getSeconds": lambda t: t.second,
    "getMilliseconds": lambda t: t.microsecond // 1000,
}


def _zoned(accessor: Callable[[datetime], int]) -> Callable[..., int]:
    return lambda moment, zone=None: accessor(_local(moment, zone))


TIME_ZONE_FUNCTIONS: dict[str, Callable[..., int]] = {
    name: _zoned(accessor) for name, accessor in _ACCESSORS.items()
}


@dataclass(frozen=True, slots=True)
class Condition:
    source: str
    program: Any  # cel.Program
    # What the program names, worked out once. Converting a variable into the runtime costs about
    # 10 µs per map entry, far more than evaluating: a context is given only the variables and the
    # time-zone functions the program names (any other could not change its result), not all of them.
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _functions: dict[str, Callable[..., int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", tuple(self.program.variables()))
        object.__setattr__(self, "_functions", {name: TIME_ZONE_FUNCTIONS[name] for name in self.program.functions()
                                                if name in TIME_ZONE_FUNCTIONS})

    def variables(self) -> list[str]:
        return list(self.program.variables())

    def functions(self) -> list[str]:
        return list(self.program.functions())

    def matches(self, variables: Mapping[str, Any]) -> bool:
        """True or False; anything else (a missing field, a type mismatch, a non-boolean result)
        raises `ConditionFailed`, which the engine treats as "not proven safe"."""
        try:
            named = {name: variables[name] for name in self._names if name in variables}
            context = cel.Context(named, self._functions) if self._functions else cel.Context(named)
            result = self.program.execute(context)
        except KeyError as error:
            raise ConditionFailed(f"no field {error.args[0]!r} in this request") from error
        except Exception as error:
            raise ConditionFailed(str(error).split(". ", 1)[0]) from error
        if not isinstance(result, bool):
            raise ConditionFailed(f"the condition gave {type(result).__name__} {result!r}, not true or false")
        return result


def compile_condition(source: str) -> Condition:
    try:
        return Condition(source, cel.compile(source))
    except ValueError as error:
        raise _syntax_error(error) from error
