"""YAML to plain data, remembering the line each key and value was written on.

PyYAML's composer keeps every node's position; we build the data from the nodes ourselves so a
problem found later (by pydantic, by a check, by the CEL compiler) can name its line. Duplicate
keys, which PyYAML would silently resolve to the last one, are refused here.
"""

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class LocatedData:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)  # 1-based
    block_scalars: set[Path] = field(default_factory=set)  # `|` or `>`: text starts a line below

    def line_of(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor written in the file."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


def load_located(text: str) -> LocatedData:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        located = LocatedData(None)
        if node is not None:
            located.data = _build(loader, node, (), located)
        return located
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlProblem(line, f"YAML syntax error: {error.problem or error.context}") from error
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path, located: LocatedData) -> Any:
    located.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<:` merge keys, as PyYAML would
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool | None):
                raise YamlProblem(key_node.start_mark.line + 1, "a key must be a plain name")
            if key in result:
                raise YamlProblem(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            child = (*path, key)
            located.lines[child] = key_node.start_mark.line + 1  # a key's problems point at the key
            result[key] = _build(loader, value_node, child, located)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, index), located) for index, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        located.block_scalars.add(path)
    return loader.construct_object(node, deep=True)
