"""Reading a YAML node tree with errors that name the file and line (the registry's parser is built on it)."""

from __future__ import annotations

from typing import Any

import yaml

from ckaudit.errors import ConfigError


class NodeReader:
    """Walks the YAML node tree so that every error can name its line."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader

    def error(self, node: yaml.Node, message: str) -> ConfigError:
        """A ConfigError at the node's line."""
        return ConfigError(self.source, node.start_mark.line + 1, message)

    def mapping(self, node: yaml.Node, what: str, allowed: set[str]) -> dict[str, yaml.Node]:
        """A mapping node's items by string key; unknown keys (when `allowed` is given) are errors at their
        line."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise self.error(key_node, f"{what}: keys must be strings, got {key!r}")
            if allowed and key not in allowed:
                raise self.error(
                    key_node, f"{what}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})"
                )
            if key in result:
                raise self.error(key_node, f"{what}: duplicate key {key!r}")
            result[key] = value_node
        return result

    def value(self, node: yaml.Node, what: str, kind: type | tuple[type, ...]) -> Any:
        """The node's value, of `kind`; a bool is not a number here, though Python says it is."""
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise self.error(node, f"{what} must be a number, got {value!r}")
        if not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise self.error(node, f"{what} must be a {names}, got {type(value).__name__} {value!r}")
        return value

    def strings(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        """A list of strings."""
        values = self.value(node, what, list)
        if not all(isinstance(v, str) for v in values):
            raise self.error(node, f"{what} must be a list of strings")
        return tuple(values)
