"""Render a Block Kit message (JSON with `blocks`) as a plain SVG picture, for the docs.

A rough likeness of Slack's look — header, context lines, sections, buttons — with no dependency
beyond the standard library: `python scripts/blockkit_svg.py docs/slack-digest-example.json > out.svg`.
"""

import json
import re
import sys
from html import escape
from typing import Any

WIDTH, PAD, LINE = 720, 20, 20
_MENTION = re.compile(r"<[@!](?:subteam\^)?([A-Z0-9]+)(?:\|[^>]*)?>")


def plain(text: str) -> str:
    """Slack mrkdwn as it reads: mentions as @id, emphasis marks dropped."""
    return re.sub(r"(?<!\w)[*_](.+?)[*_](?!\w)", r"\1", _MENTION.sub(r"@\1", text))


def render(message: dict[str, Any]) -> str:
    parts: list[str] = []
    y = PAD

    def text(line: str, *, size: int = 14, weight: str = "normal", colour: str = "#1d1c1d", x: int = PAD) -> None:
        nonlocal y
        y += LINE if size <= 14 else LINE + 6
        parts.append(f'<text x="{x}" y="{y}" font-size="{size}" font-weight="{weight}" fill="{colour}">'
                     f"{escape(line)}</text>")

    for block in message.get("blocks", []):
        kind = block.get("type")
        if kind == "header":
            text(block["text"]["text"], size=18, weight="bold")
        elif kind == "context":
            for element in block.get("elements", []):
                text(plain(element.get("text", "")), size=12, colour="#616061")
        elif kind == "section":
            for i, line in enumerate(plain(block["text"]["text"]).split("\n")):
                text(line[:95], weight="bold" if i == 0 else "normal")
        elif kind == "actions":
            y += 10
            x = PAD
            for element in block.get("elements", []):
                label = element.get("text", {}).get("text", "")
                width = 16 + 8 * len(label)
                style = element.get("style")
                fill = {"primary": "#007a5a", "danger": "#e01e5a"}.get(style, "#ffffff")
                colour = "#ffffff" if style else "#1d1c1d"
                parts.append(f'<rect x="{x}" y="{y}" width="{width}" height="28" rx="4" fill="{fill}" '
                             f'stroke="#bbbabb"/><text x="{x + 8}" y="{y + 19}" font-size="13" font-weight="bold" '
                             f'fill="{colour}">{escape(label)}</text>')
                x += width + 8
            y += 30
        elif kind == "divider":
            y += 12
            parts.append(f'<line x1="{PAD}" y1="{y}" x2="{WIDTH - PAD}" y2="{y}" stroke="#dddddd"/>')
    height = y + PAD
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'font-family="Lato, DejaVu Sans, sans-serif"><rect width="100%" height="100%" fill="#ffffff"/>'
            + "".join(parts) + "</svg>\n")


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        sys.stdout.write(render(json.load(source)))
