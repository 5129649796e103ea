"""Outside text made inert for Slack: shown as written, never parsed as markup.

`literal()` is for outside text inside our mrkdwn, `plain_text()` for a `plain_text` object and
`quote_lines()` for prose shown as a quote. Each removes the characters that change how other
text reads, escapes Slack's `&`, `<` and `>` and cuts to a length measured after escaping (Slack's
limits count what is sent); `literal` and `quote_lines` also swap mrkdwn's formatting marks for
look-alikes Slack does not parse.
"""

import re
import unicodedata
from typing import Any

# Longest outside value shown inline by default.
VALUE_LIMIT = 300

# Bidi embeddings, overrides and isolates, the implicit marks and the Arabic letter mark: they make
# text read in another order than it is stored, so a value could show a different amount or id.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_ZERO_WIDTH_JOINER = "\u200d"  # holds emoji sequences together; harmless on its own
# Slack mrkdwn's formatting marks, each replaced by a look-alike it does not parse.
_MARKS = str.maketrans({"*": "\u2217", "~": "\u223c", "`": "\u02cb"})
# `_` formats only at a word's edge (`_x_`); inside a word (`ch_1`, `order_id`) it is kept.
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def escape(text: Any) -> str:
    """Slack's three control characters, so user text is shown and never parsed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def neutral(text: Any) -> str:
    """Text without the characters that change how other text reads: bidi controls and other
    invisible format characters are dropped; control characters and line or paragraph separators
    become spaces (`one_line` then collapses them); lone surrogates become U+FFFD."""
    out = []
    for char in str(text):
        if char in _BIDI:
            continue
        category = unicodedata.category(char)
        if category == "Cf" and char != _ZERO_WIDTH_JOINER:
            continue
        if char in "\n\r":
            out.append(char)
        elif category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif category == "Cs":
            out.append("\ufffd")
        else:
            out.append(char)
    return "".join(out)


def one_line(text: Any) -> str:
    """Neutral text on one line: every run of whitespace, line breaks included, is one space."""
    return " ".join(neutral(text).split())


def plain_text(value: Any, limit: int = VALUE_LIMIT) -> str:
    """Outside text for a `plain_text` object: one line, neutral, escaped, at most `limit` long."""
    return escaped_within(one_line(value), limit)


def escaped_within(text: str, limit: int) -> str:
    """`text` escaped, cut (before escaping, so no entity is split) until the result fits `limit`:
    `<` is four characters once escaped, and Slack's limits count what is sent."""
    budget = limit
    while True:
        escaped = escape(truncate(text, budget))
        if len(escaped) <= limit or budget <= 1:
            return escaped
        budget -= max(1, (len(escaped) - limit + 3) // 4)


def literal(value: Any, limit: int = VALUE_LIMIT) -> str:
    """Outside text inside our mrkdwn: as `plain_text`, and its formatting marks made inert."""
    return _inert_marks(plain_text(value, limit))


def _inert_marks(text: str) -> str:
    return _EDGE_UNDERSCORE.sub("\u02cd", text.translate(_MARKS))


def quote_lines(text: Any, limit: int) -> str:
    """Outside prose as a mrkdwn quote: its own line breaks kept, every line starting with `> `
    (so none can escape the quote), each line neutral, escaped and inert."""
    rows, room = [], limit
    for row in neutral(text).strip().splitlines():
        shown = _inert_marks(escaped_within(" ".join(row.split()), room))
        rows.append(shown)
        room -= len(shown) + 3  # "> " and the line break
        if room <= 1:
            break
    return "\n".join(f"> {row}" for row in rows or [""])


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
