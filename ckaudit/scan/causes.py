"""The line a change touched that makes a checkpoint fail: `models/net.py:5 width=64 -> width=128`.

A failing layer's finding names where the layer is defined; the user changed something else — a default
argument, a config field, a module constant, a deleted layer. From the model's source files on both sides
(the files whose blob ids differ), a line diff (difflib) gives the changed lines; a changed line is a cause
of a finding when it is the layer's own definition, or when a name it changes flows into that definition:
the names the defining statement uses (variables, attributes such as `config.width`, keywords), followed
back through the assignments of its function (`hidden = width * 2`), or when it deletes or adds the layer
(`self.fc2 = ...` for keys under `fc2`). Torch-free: difflib and ast only.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from ckaudit.findings import Finding
from ckaudit.vcs import Tree

_NAME = re.compile(r"[A-Za-z_]\w*")
_OPEN, _CLOSE = "([{,", ")]},"
_GENERIC = {"self", "cls", "nn", "torch", "int", "float", "str", "bool", "super", "None", "True", "False"}
_SHOWN = 3  # changed lines named in the message; details keep them all
_KEY_RULES = ("missing-keys", "unexpected-keys", "shape-mismatch", "renamed-keys")


@dataclass(frozen=True)
class ChangedLine:
    path: str
    line: int | None  # in the new version (None: the line was deleted)
    old_line: int | None  # in the old version (None: the line was added)
    old: str  # the changed part of the old line (whole line when deleted)
    new: str

    def describe(self) -> str:
        if self.line is None:
            return f"{self.path}:{self.old_line} deleted `{self.old}`"
        if self.old_line is None:
            return f"{self.path}:{self.line} added `{self.new}`"
        return f"{self.path}:{self.line} {self.old} -> {self.new}"

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "old_line": self.old_line,
            "old": self.old,
            "new": self.new,
        }

    def names(self) -> set[str]:
        return {n for n in _NAME.findall(f"{self.old} {self.new}") if _meaningful(n)}


def changed_lines(before: Mapping[str, str], after: Mapping[str, str]) -> list[ChangedLine]:
    """Every changed line between two versions of the same files (path -> text), in file order."""
    out: list[ChangedLine] = []
    for path in sorted({*before, *after}):
        old, new = before.get(path, "").splitlines(), after.get(path, "").splitlines()
        matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            for k in range(paired):
                a, b = _fragments(old[i1 + k], new[j1 + k])
                out.append(ChangedLine(path, j1 + k + 1, i1 + k + 1, a, b))
            out.extend(ChangedLine(path, None, i + 1, old[i].strip(), "") for i in range(i1 + paired, i2))
            out.extend(ChangedLine(path, j + 1, None, "", new[j].strip()) for j in range(j1 + paired, j2))
    return [c for c in out if (c.old or c.new) and not _comment(c.old) and not _comment(c.new)]


def _comment(text: str) -> bool:
    return text.startswith("#")


def _fragments(old: str, new: str) -> tuple[str, str]:
    """The changed part of a line pair, widened to its argument or statement: `width=64`, `width=128`."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    common_start = start
    while common_start > 0 and old[common_start - 1] not in _OPEN:
        common_start -= 1
    tail = 0
    while tail < end and old[len(old) - end + tail] not in _CLOSE and old[len(old) - end + tail] != ":":
        tail += 1
    cut = end - tail
    return old[common_start : len(old) - cut].strip(), new[common_start : len(new) - cut].strip()


def _meaningful(name: str) -> bool:
    return name not in _GENERIC and not keyword.iskeyword(name)


@lru_cache(maxsize=256)
def _tree(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def layer_names(text: str, line: int) -> set[str]:
    """Names the statement at `line` uses, followed back through its function's assignments."""
    module = _tree(text)
    if module is None:
        return set()
    statement, scope = _statement_at(module, line)
    if statement is None:
        return set()
    names = {n for n in _used(statement) if _meaningful(n)}
    assignments = [n for n in ast.walk(scope) if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign)]
    grew = True
    while grew:
        grew = False
        for node in assignments:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(_used(t) & names for t in targets):
                more = {n for n in _used(node.value) if _meaningful(n)} - names
                names |= more
                grew = grew or bool(more)
    return names


def _statement_at(module: ast.Module, line: int) -> tuple[ast.stmt | None, ast.AST]:
    """The innermost simple statement spanning `line`, and the function (else module) around it."""
    found: ast.stmt | None = None
    scope: ast.AST = module
    for node in ast.walk(module):
        if not isinstance(node, ast.stmt) or not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if scope is module or node.lineno >= getattr(scope, "lineno", 0):
                scope = node
        elif not isinstance(node, ast.ClassDef) and (found is None or node.lineno >= found.lineno):
            found = node
    return found, scope


def _used(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, ast.keyword) and sub.arg:
            names.add(sub.arg)
    return names


def causes_of(
    finding: Finding, changes: Sequence[ChangedLine], after: Mapping[str, str]
) -> list[ChangedLine]:
    """The changed lines that produce this finding (empty when none can be told)."""
    if finding.rule.value not in _KEY_RULES:
        return []
    layer_parts = {p for key in _keys(finding) for p in key.split(".") if not p.isdigit()}
    names: set[str] = set()
    at: tuple[str, int] | None = None
    location = finding.location
    if location is not None and location.line is not None:
        path = _in(after, location.path)
        if path is not None:
            at = (path, location.line)
            names = layer_names(after[path], location.line)
    found = []
    for change in changes:
        own = at is not None and change.path == at[0] and change.line is not None and change.line == at[1]
        if own or change.names() & names or _defines(change, layer_parts):
            found.append(change)
    return found


def _defines(change: ChangedLine, layer_parts: set[str]) -> bool:
    """A deleted or added `self.fc2 = ...` / `fc2 = ...` for a finding about keys under `fc2`."""
    text = change.old if change.line is None else change.new if change.old_line is None else ""
    match = re.match(r"(?:self\.)?([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", text)
    return match is not None and match.group(1) in layer_parts


def _keys(finding: Finding) -> list[str]:
    details = finding.details
    keys = [str(k) for k in details.get("keys", [])]
    keys += [str(details["key"])] if "key" in details else []
    keys += [str(m["key"]) for m in details.get("mismatches", []) if isinstance(m, dict)]
    return keys


def _in(files: Mapping[str, str], path: str) -> str | None:
    """The path among `files` (repository-relative) that a location path names (root-relative)."""
    if path in files:
        return path
    return next((p for p in files if p.endswith("/" + path)), None)


CHANGED = " — changed:"  # what joins a message and the changed lines it names


def with_causes(
    findings: Iterable[Finding], changes: Sequence[ChangedLine], after: Mapping[str, str]
) -> list[Finding]:
    """Each finding with the changed lines that produce it named in its message and `details.changed`."""
    out = []
    for finding in findings:
        found = causes_of(finding, changes, after)
        if not found:
            out.append(finding)
            continue
        shown = "; ".join(c.describe() for c in found[:_SHOWN])
        more = f" (+{len(found) - _SHOWN} more)" if len(found) > _SHOWN else ""
        details = {**finding.details, "changed": [c.as_dict() for c in found]}
        out.append(replace(finding, message=f"{finding.message}{CHANGED} {shown}{more}", details=details))
    return out


def without_causes(message: str) -> str:
    """A message without the changed lines `with_causes` named (for a report that shows the diff itself)."""
    return message.split(CHANGED, 1)[0]


def changed_texts(details: Mapping[str, object]) -> list[str]:
    """The changed lines a finding's `details.changed` holds, as `with_causes` words them (all of them)."""
    entries = details.get("changed")
    if not isinstance(entries, list):
        return []
    return [ChangedLine(**entry).describe() for entry in entries if isinstance(entry, dict)]


def name_changed_lines(
    findings: Sequence[Finding],
    old: Mapping[str, str | None],
    new: Mapping[str, str | None],
    before: Tree,
    after: Tree,
) -> list[Finding]:
    """`with_causes` over the model's source files (path -> blob id on each side) that differ."""
    paths = sorted(p for p in {*old, *new} if old.get(p) != new.get(p))
    if not paths:
        return list(findings)
    texts = [
        {p: data.decode("utf-8", "replace") for p, data in tree.read_many(paths).items()}
        for tree in (before, after)
    ]
    return with_causes(findings, changed_lines(*texts), texts[1])
