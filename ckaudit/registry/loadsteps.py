"""`load:` of a checkpoint entry: what the project's own loader does to a state dict before load_state_dict.

Either declarative steps, applied in this order — `strip_prefix` (one or more, each stripped where present),
`add_prefix`, `rename` (a key or module path -> its new name; the closest enclosing entry applies), `drop`
(exact keys or globs) — or `loader: module:function`, a function of the project that takes a state dict and
returns one (or changes it in place and returns None), run by the model worker on meta tensors.
`strict: false` inside `load:` is the entry's `strict: false`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

    from ckaudit.registry.yamlnodes import NodeReader

_LOADER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
LOAD_KEYS = {"strip_prefix", "add_prefix", "rename", "drop", "strict", "loader"}


@dataclass(frozen=True)
class LoadSteps:
    strip_prefix: tuple[str, ...] = ()
    add_prefix: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    loader: str | None = None  # "package.module:function"

    def describe(self) -> str:
        """One line for messages: `strip_prefix '_orig_mod.'` / `loader train.utils:clean`."""
        if self.loader:
            return f"loader {self.loader}"
        parts = [f"strip_prefix {p!r}" for p in self.strip_prefix]
        if self.add_prefix:
            parts.append(f"add_prefix {self.add_prefix!r}")
        if self.rename:
            parts.append(f"rename {len(self.rename)} key(s)")
        if self.drop:
            parts.append(f"drop {', '.join(self.drop)}")
        return ", ".join(parts)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadSteps:
        """The inverse of `as_dict` (a finding's `details.load_steps`, already checked when it was made)."""
        strip = data.get("strip_prefix", ())
        return cls(
            strip_prefix=(strip,) if isinstance(strip, str) else tuple(strip),
            add_prefix=data.get("add_prefix"),
            rename=dict(data.get("rename", {})),
            drop=tuple(data.get("drop", ())),
            loader=data.get("loader"),
        )

    def as_dict(self) -> dict[str, Any]:
        """The registry form (what the writer dumps and the cache keys on)."""
        data: dict[str, Any] = {}
        if self.strip_prefix:
            data["strip_prefix"] = (
                self.strip_prefix[0] if len(self.strip_prefix) == 1 else list(self.strip_prefix)
            )
        if self.add_prefix:
            data["add_prefix"] = self.add_prefix
        if self.rename:
            data["rename"] = dict(self.rename)
        if self.drop:
            data["drop"] = list(self.drop)
        if self.loader:
            data["loader"] = self.loader
        return data


def parse_load(parser: NodeReader, node: yaml.Node, what: str) -> tuple[LoadSteps, bool | None]:
    """The steps, and `strict` when `load:` sets it (None: not set). Errors name the line."""
    fields = parser.mapping(node, f"{what}: load", LOAD_KEYS)
    strip: tuple[str, ...] = ()
    if "strip_prefix" in fields:
        raw = parser.value(fields["strip_prefix"], f"{what}: load.strip_prefix", (str, list))
        strip = (raw,) if isinstance(raw, str) else parser.strings(fields["strip_prefix"], f"{what}: load")
        if not all(strip):
            raise parser.error(fields["strip_prefix"], f"{what}: load.strip_prefix must not be empty")
    add = None
    if "add_prefix" in fields:
        add = parser.value(fields["add_prefix"], f"{what}: load.add_prefix", str)
    if add == "":
        raise parser.error(fields["add_prefix"], f"{what}: load.add_prefix must not be empty")
    rename: dict[str, str] = {}
    if "rename" in fields:
        rename = parser.value(fields["rename"], f"{what}: load.rename", dict)
        if not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in rename.items()):
            raise parser.error(fields["rename"], f"{what}: load.rename must map key names to key names")
    drop = parser.strings(fields["drop"], f"{what}: load.drop") if "drop" in fields else ()
    loader = parser.value(fields["loader"], f"{what}: load.loader", str) if "loader" in fields else None
    if loader is not None and not _LOADER.match(loader):
        raise parser.error(
            fields["loader"], f"{what}: load.loader must look like package.module:function, got {loader!r}"
        )
    steps = LoadSteps(tuple(strip), add, rename, tuple(drop), loader)
    if loader and (strip or add or rename or drop):
        raise parser.error(node, f"{what}: load.loader replaces the other steps; give one or the other")
    strict = parser.value(fields["strict"], f"{what}: load.strict", bool) if "strict" in fields else None
    return steps, strict
