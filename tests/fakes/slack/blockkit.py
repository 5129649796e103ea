"""Block Kit checks: the limits Slack enforces with `invalid_blocks`."""

from typing import Any

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
KNOWN_BLOCK_TYPES = frozenset(
    "actions context context_actions divider file header image input markdown rich_text section table video"
    " call".split()
)



def block_problems(blocks: Any, *, limit: int, pointer: str) -> list[str]:
    """What Slack would say is wrong with a blocks array, in its `[ERROR] … [json-pointer:…]` style."""
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{pointer}]"]
    problems = []
    if len(blocks) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]")
    seen_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"{pointer}/{index}"
        problems += _block_problems(block, where)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None:
            if block_id in seen_ids:
                problems.append(f"[ERROR] duplicate block_id {block_id!r} [json-pointer:{where}/block_id]")
            seen_ids.add(block_id)
    return problems


def _block_problems(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"[ERROR] must be an object [json-pointer:{where}]"]
    kind = block.get("type")
    if not kind:
        return [f"[ERROR] missing required field: type [json-pointer:{where}]"]
    if kind not in KNOWN_BLOCK_TYPES:
        return [f"[ERROR] unsupported type: {kind} [json-pointer:{where}/type]"]
    problems = _too_long(block.get("block_id"), 255, f"{where}/block_id")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"[ERROR] must provide text or fields [json-pointer:{where}]")
        if "text" in block:
            problems += _text_problems(block["text"], 3000, f"{where}/text")
        fields = block.get("fields", [])
        if len(fields) > 10:
            problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{where}/fields]")
        for i, field in enumerate(fields):
            problems += _text_problems(field, 2000, f"{where}/fields/{i}")
        if "accessory" in block:
            problems += _element_problems(block["accessory"], f"{where}/accessory")
    elif kind == "header":
        problems += _text_problems(block.get("text"), 150, f"{where}/text", plain_only=True)
    elif kind in ("context", "actions"):
        limit = 10 if kind == "context" else 25
        elements = block.get("elements") or []
        if not elements:
            problems.append(f"[ERROR] missing required field: elements [json-pointer:{where}]")
        if len(elements) > limit:
            problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{where}/elements]")
        check = _context_element_problems if kind == "context" else _element_problems
        for i, element in enumerate(elements):
            problems += check(element, f"{where}/elements/{i}")
        problems += _duplicate_action_ids(elements, where)
    elif kind == "input":
        problems += _text_problems(block.get("label"), 2000, f"{where}/label", plain_only=True)
        if "element" not in block:
            problems.append(f"[ERROR] missing required field: element [json-pointer:{where}]")
        else:
            problems += _element_problems(block["element"], f"{where}/element")
    return problems


def _too_long(value: Any, limit: int, where: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"[ERROR] must be less than {limit + 1} characters [json-pointer:{where}]"]
    return []


def _text_problems(text: Any, limit: int, where: str, *, plain_only: bool = False) -> list[str]:
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(text, dict) or text.get("type") not in allowed:
        return [f"[ERROR] must be a {' or '.join(allowed)} text object [json-pointer:{where}]"]
    if not isinstance(text.get("text"), str) or not text["text"]:
        return [f"[ERROR] must be more than 0 characters [json-pointer:{where}/text]"]
    return _too_long(text["text"], limit, f"{where}/text")


def _context_element_problems(element: Any, where: str) -> list[str]:
    if isinstance(element, dict) and element.get("type") == "image":
        return []
    return _text_problems(element, 3000, where)


def _element_problems(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or not element.get("type"):
        return [f"[ERROR] missing required field: type [json-pointer:{where}]"]
    problems = _too_long(element.get("action_id"), 255, f"{where}/action_id")
    if element["type"] == "button":
        problems += _text_problems(element.get("text"), 75, f"{where}/text", plain_only=True)
        problems += _too_long(element.get("value"), 2000, f"{where}/value")
        problems += _too_long(element.get("url"), 3000, f"{where}/url")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"[ERROR] must be primary or danger [json-pointer:{where}/style]")
    options = element.get("options") or []
    if len(options) > 100:
        problems.append(f"[ERROR] no more than 100 items allowed [json-pointer:{where}/options]")
    for i, option in enumerate(options):
        problems += _text_problems(option.get("text"), 75, f"{where}/options/{i}/text")
        problems += _too_long(option.get("value"), 150, f"{where}/options/{i}/value")
    return problems


def _duplicate_action_ids(elements: list, where: str) -> list[str]:
    ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
    return [f"[ERROR] duplicate action_id {a!r} [json-pointer:{where}]" for a in {*ids} if ids.count(a) > 1]


def view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["[ERROR] must be an object [json-pointer:/view]"]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return ["[ERROR] must be modal or home [json-pointer:/view/type]"]
    problems = block_problems(view.get("blocks"), limit=VIEW_BLOCK_LIMIT, pointer="/view/blocks")
    for key, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        problems += _too_long(view.get(key), limit, f"/view/{key}")
    if kind == "home":
        if "submit" in view or "close" in view:
            problems.append("[ERROR] home views cannot have submit or close [json-pointer:/view]")
        return problems
    problems += _text_problems(view.get("title"), 24, "/view/title", plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            problems += _text_problems(view[key], 24, f"/view/{key}", plain_only=True)
    has_inputs = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
    if has_inputs and "submit" not in view:
        problems.append("[ERROR] must provide submit when input blocks are present [json-pointer:/view]")
    return problems
