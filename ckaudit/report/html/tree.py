"""The model beside the checkpoint: both module trees as SVG, from one checkpoint entry of the JSON report.

No second analysis: the two key lists are the entry's `model_keys` and `checkpoint_keys` (kept in the JSON
for checkpoints a dry run says do not load), and each differing key's colour comes from the finding that
names it: `missing-keys` and `unexpected-keys` lists, `shape-mismatch` keys (both sides, resized), the
`renamed-keys` module map and the `key-prefix` prefix (both sides, renamed). A key on one side only that no
finding names is still drawn missing or unexpected, without a link. Subtrees where every key matches are
one row with a count; only the differing subtrees are opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ckaudit.keyranges import format_ranges

MATCHED, MISSING, UNEXPECTED, RESIZED, RENAMED = "matched", "missing", "unexpected", "resized", "renamed"
MAX_ROWS = 400  # per side: a pathological diff still makes a page, not a megabyte of SVG
ROW = 18
INDENT = 14


@dataclass
class Node:
    name: str
    path: str
    children: dict[str, Node] = field(default_factory=dict)
    status: str | None = None  # leaves only
    finding: str | None = None  # the anchor of the finding that names this key

    def leaves(self) -> Iterable[Node]:
        if self.status is not None:
            yield self
        for child in self.children.values():
            yield from child.leaves()


@dataclass(frozen=True)
class KeyDiff:
    """Each side's keys in order, and each differing key's status and finding anchor."""

    model: tuple[str, ...]
    checkpoint: tuple[str, ...]
    model_status: Mapping[str, tuple[str, str]]
    checkpoint_status: Mapping[str, tuple[str, str]]


def _shape_keys(details: Mapping[str, Any]) -> list[str]:
    rows = details.get("mismatches") or [details]
    return [r["key"] for r in rows if isinstance(r, Mapping) and isinstance(r.get("key"), str)]


def _under(key: str, module: str) -> bool:
    return key == module or key.startswith(module + ".")


def _renamed(details: Mapping[str, Any], model: Sequence[str], file: Sequence[str]) -> list[tuple[str, str]]:
    """(model key, checkpoint key) pairs of the module rename map (old module -> new module)."""
    modules = details.get("modules") or {}
    model_keys = [k for k in model if any(_under(k, new) for new in modules.values())]
    file_keys = [k for k in file if any(_under(k, old) for old in modules)]
    return [(k, "") for k in model_keys] + [("", k) for k in file_keys]


def _prefixed(details: Mapping[str, Any], model: Sequence[str], file: Sequence[str]) -> list[tuple[str, str]]:
    """(model key, checkpoint key) pairs that match once the finding's prefix is stripped or added."""
    prefix = str(details.get("prefix") or "")
    if not prefix:
        return []
    if details.get("mode") == "add":
        known = set(file)
        return [(k, k[len(prefix) :]) for k in model if k.startswith(prefix) and k[len(prefix) :] in known]
    known = set(model)
    return [(k[len(prefix) :], k) for k in file if k.startswith(prefix) and k[len(prefix) :] in known]


def _marks(
    entry: Mapping[str, Any], anchors: Mapping[int, str], model: list[str], file: list[str]
) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    on_model: dict[str, tuple[str, str]] = {}
    on_file: dict[str, tuple[str, str]] = {}
    for index, finding in enumerate(entry.get("findings") or []):
        rule, details, anchor = finding.get("rule"), finding.get("details") or {}, anchors.get(index, "")
        if rule == "missing-keys":
            on_model.update((k, (MISSING, anchor)) for k in details.get("keys") or [])
        elif rule == "unexpected-keys":
            on_file.update((k, (UNEXPECTED, anchor)) for k in details.get("keys") or [])
        elif rule == "shape-mismatch":
            for key in _shape_keys(details):
                on_model[key] = on_file[key] = (RESIZED, anchor)
        elif rule in ("renamed-keys", "key-prefix"):
            pairs = (_renamed if rule == "renamed-keys" else _prefixed)(details, model, file)
            on_model.update((m, (RENAMED, anchor)) for m, _ in pairs if m)
            on_file.update((f, (RENAMED, anchor)) for _, f in pairs if f)
    return on_model, on_file


def key_diff(entry: Mapping[str, Any], anchors: Mapping[int, str]) -> KeyDiff | None:
    """The two sides of `entry` (a JSON checkpoint entry); None when neither side has a key to draw."""
    model = [str(k) for k in entry.get("model_keys") or []]
    file = [str(k) for k in entry.get("checkpoint_keys") or []]
    on_model, on_file = _marks(entry, anchors, model, file)
    model += [k for k in on_model if k not in set(model)]
    file += [k for k in on_file if k not in set(file)]
    in_model, in_file = set(model), set(file)
    for key in model:
        if key not in in_file and key not in on_model:
            on_model[key] = (MISSING, "")
    for key in file:
        if key not in in_model and key not in on_file:
            on_file[key] = (UNEXPECTED, "")
    if not model and not file:
        return None
    return KeyDiff(tuple(_in_file_order(model, file)), tuple(file), on_model, on_file)


def _in_file_order(model: Sequence[str], file: Sequence[str]) -> list[str]:
    """The model's keys as the checkpoint lists them (the order it was saved in, usually the model's), the
    rest after them in natural order (`blocks.2` before `blocks.10`): the worker's signature is sorted."""
    position = {key: i for i, key in enumerate(file)}

    def natural(key: str) -> tuple[Any, ...]:
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split("."))

    return sorted(model, key=lambda k: (position.get(k, len(position)), natural(k)))


def _order(model: Sequence[str]) -> Any:
    position = {k: i for i, k in enumerate(model)}
    return lambda key: (position.get(key, len(position)), key)


def build_tree(keys: Sequence[str], statuses: Mapping[str, tuple[str, str]]) -> Node:
    """The state-dict keys as a tree of dotted parts, each leaf with its status and finding (matched unless
    `statuses` says otherwise)."""
    root = Node("", "")
    for key in keys:
        node = root
        parts = key.split(".")
        for depth, part in enumerate(parts):
            path = ".".join(parts[: depth + 1])
            node = node.children.setdefault(part, Node(part, path))
        node.status, node.finding = statuses.get(key, (MATCHED, ""))
    return root


@dataclass(frozen=True)
class Row:
    depth: int
    label: str
    status: str  # a leaf's status, "matched" for a closed subtree, "differs" for an opened one
    path: str  # the key or module path, with `{0..11}` where parallel modules were drawn once
    count: int  # keys under it (over every parallel module)
    finding: str
    keys: tuple[str, ...]  # leaves: every key the row stands for


def _shape(node: Node) -> tuple[tuple[str, str], ...]:
    """What a subtree looks like: its leaves' relative paths and statuses (parallel modules share it)."""
    cut = len(node.path) + 1
    return tuple((leaf.path[cut:], leaf.status or "") for leaf in node.leaves())


def _runs(children: Sequence[Node]) -> list[list[int]]:
    """Consecutive numbered siblings that look alike (`blocks.0` … `blocks.11`) as one run of indices."""
    runs: list[list[int]] = []
    for index, child in enumerate(children):
        head = children[runs[-1][0]] if runs else None
        if (
            head is not None
            and child.name.isdigit()
            and head.name.isdigit()
            and _shape(child) == _shape(head)
        ):
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def rows(root: Node) -> list[Row]:
    """The tree as table rows in display order; parallel modules that look alike (`blocks.{0..11}`) drawn
    once."""
    out: list[Row] = []
    _children_rows([root], -1, "", out)
    return out


def _children_rows(parents: Sequence[Node], depth: int, path: str, out: list[Row]) -> None:
    """The rows of the children of `parents` (parallel modules that look alike: drawn once)."""
    lists = [list(p.children.values()) for p in parents]
    for run in _runs(lists[0]):
        names = [lists[0][i].name for i in run]
        label = names[0] if len(run) == 1 else "{" + format_ranges(int(n) for n in names) + "}"
        nodes = [children[i] for children in lists for i in run]
        _rows(nodes, label, depth + 1, f"{path}.{label}" if path else label, out)


def _rows(nodes: Sequence[Node], label: str, depth: int, path: str, out: list[Row]) -> None:
    """One row for `nodes` (parallel modules drawn once), then their children where they differ."""
    first = nodes[0]
    leaves = [leaf for node in nodes for leaf in node.leaves()]
    if first.status is not None and not first.children:
        keys = tuple(n.path for n in nodes)
        out.append(Row(depth, label, first.status, path, len(keys), first.finding or "", keys))
        return
    if all(leaf.status == MATCHED for leaf in leaves):
        out.append(Row(depth, label, MATCHED, path, len(leaves), "", ()))
        return
    out.append(Row(depth, label, "differs", path, len(leaves), "", ()))
    _children_rows(nodes, depth, path, out)


def svg(side: str, tree_rows: Sequence[Row]) -> str:
    """One side's rows as an SVG; each leaf that differs links to its finding."""
    shown = list(tree_rows[:MAX_ROWS])
    height = ROW * (len(shown) + (1 if len(tree_rows) > MAX_ROWS else 0)) + 6
    parts = [
        f'<svg class="tree" data-side="{side}" role="img" aria-label="{side} module tree" '
        f'width="100%" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, row in enumerate(shown):
        parts.append(_svg_row(row, 4 + i * ROW))
    if len(tree_rows) > MAX_ROWS:
        parts.append(f'<text x="4" y="{4 + len(shown) * ROW + 13}">… {len(tree_rows) - MAX_ROWS} more</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_row(row: Row, y: int) -> str:
    x = 4 + row.depth * INDENT
    if row.keys:
        label = row.label + (f"  ×{row.count}" if row.count > 1 else "")
    else:
        label = f"{row.label}  ({row.count} {'matched' if row.status == MATCHED else 'keys'})"
    kind = "leaf" if row.keys else "module"
    body = (
        f'<rect x="{x}" y="{y + 3}" width="10" height="10" rx="2" class="sw {row.status}"/>'
        f'<text x="{x + 15}" y="{y + 12}" class="t {row.status}">{escape(label)}</text>'
    )
    title = f"<title>{escape(row.path)}: {row.status}</title>"
    keys = f' data-keys="{escape(" ".join(row.keys))}"' if row.keys else ""
    group = (
        f'<g class="node {kind}" data-status="{row.status}" data-path="{escape(row.path)}"{keys} '
        f'data-count="{row.count}">{title}{body}</g>'
    )
    if row.finding and row.status != MATCHED:
        return f'<a href="#{row.finding}">{group}</a>'
    return group
