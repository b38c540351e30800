"""`dangling-reference`: string literals in the repository's code naming a checkpoint that is not there.

A literal counts when its file name matches one of the scan include globs' name patterns (`*.pt`, ...), it
is a plain relative path (no URL, no `{}`/`%` placeholder, no glob characters, no whitespace), and it exists
neither relative to the repository root nor relative to the folder of the file that names it. Paths under
the exclude globs are skipped, and so are absolute and `~` paths: they name a machine, not the repository.

Outputs are not references: a literal passed to a call whose name says save/export/write/dump, the first
argument of `open(..., "w")`, and a value bound to a name, keyword, dict key or command-line option that
says out/save/export/dest/write/dump (`parser.add_argument("--output", default="model.pt")`). f-strings and
docstrings are skipped, and so are names joined to a folder computed at run time (`out_dir / "x.pt"`,
`prefix + "x.pt"`, `os.path.join(folder, "x.pt")`). The code is parsed with `ast`, never imported.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ckaudit import globs
from ckaudit.files.missing import where_it_went
from ckaudit.findings import Finding, Location, Rule, Severity
from ckaudit.registry import ScanSettings
from ckaudit.vcs import GitRepo

_OUTPUT = re.compile(r"out|save|export|dest|write|dump", re.IGNORECASE)
_NOT_A_PATH = re.compile(r"\s|://|[{}%*?\[\]]|^[/~]|^[A-Za-z]:[\\/]")


def _name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    return ""


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class _Literals(ast.NodeVisitor):
    """Collects (line, text) of every string literal that is not in an output position."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.found.append((node.lineno, node.value))

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return None  # an f-string names a path only once formatted

    def visit_Expr(self, node: ast.Expr) -> None:
        if not _is_str(node.value):  # a bare string statement is a docstring or comment
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        self.visit(node.func)
        if _OUTPUT.search(_name_of(node.func)) or self._output_option(node):
            return
        args = node.args
        if _name_of(node.func) in ("join", "joinpath"):  # os.path.join(base, "x.pt"), base.joinpath("x.pt")
            args = node.args[:1] if _name_of(node.func) == "join" else []
        elif self._opened_for_writing(node):
            args = node.args[1:]
        for arg in args:
            self.visit(arg)
        for keyword in node.keywords:
            if not (keyword.arg and _OUTPUT.search(keyword.arg)):
                self.visit(keyword.value)

    @staticmethod
    def _output_option(node: ast.Call) -> bool:
        return any(
            _is_str(a) and a.value.startswith("-") and _OUTPUT.search(a.value)  # type: ignore[attr-defined]
            for a in node.args
        )

    @staticmethod
    def _opened_for_writing(node: ast.Call) -> bool:
        if _name_of(node.func) != "open":
            return False
        modes = [a for a in node.args[1:2]] + [k.value for k in node.keywords if k.arg == "mode"]
        return any(_is_str(m) and set(m.value) & set("wax+") for m in modes)  # type: ignore[attr-defined]

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.visit(node.left)
        if not isinstance(node.op, (ast.Div, ast.Add)):  # `base / "x.pt"`, `base + "x.pt"`: base unknown
            self.visit(node.right)

    def visit_Assign(self, node: ast.Assign) -> None:
        if not any(_OUTPUT.search(_name_of(t)) for t in node.targets):
            self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None and not _OUTPUT.search(_name_of(node.target)):
            self.visit(node.value)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None and _is_str(key) and _OUTPUT.search(key.value):  # type: ignore[attr-defined]
                continue
            self.visit(value)

    def visit_arguments(self, node: ast.arguments) -> None:
        positional = [*node.posonlyargs, *node.args]
        pairs = list(zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=True))
        pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d is not None]
        for arg, default in pairs:
            if not _OUTPUT.search(arg.arg):
                self.visit(default)


def literals(source: bytes, filename: str) -> list[tuple[int, str]]:
    """(line, string) of every string literal in a Python file; [] for a file that does not parse (not ours
    to judge)."""
    try:
        tree = ast.parse(source, filename=filename)
    except (SyntaxError, ValueError):
        return []  # not ours to judge: the file does not parse
    collector = _Literals()
    collector.visit(tree)
    return collector.found


def _candidates(text: str, py_file: str) -> list[str]:
    """Where the literal could point, root-relative: from the root and from the file's folder."""
    options = {os.path.normpath(text), os.path.normpath(os.path.join(os.path.dirname(py_file), text))}
    return sorted(p.replace(os.sep, "/") for p in options if not p.startswith(".."))


def dangling_in(
    root: Path, py_file: str, source: bytes, settings: ScanSettings
) -> Iterator[tuple[int, str, str]]:
    """(line, literal, root-relative path) for each checkpoint-like literal in `source` naming nothing."""
    names = globs.name_patterns(settings.include)
    for line, text in literals(source, py_file):
        if (
            len(text) > 512
            or _NOT_A_PATH.search(text)
            or not globs.name_matches(os.path.basename(text), names)
        ):
            continue
        candidates = _candidates(text, py_file)
        if not candidates or any(globs.matches(c, settings.exclude) for c in candidates):
            continue
        if not any((root / c).exists() for c in candidates):
            yield line, text, candidates[0] if len(candidates) == 1 else os.path.normpath(text)


def find_dangling(
    root: Path, python_files: Iterable[str], settings: ScanSettings, repo: GitRepo | None
) -> list[Finding]:
    """Findings for every dangling checkpoint reference in the given root-relative Python files."""
    markers = [n.rsplit("*", 1)[-1].encode() for n in globs.name_patterns(settings.include)]
    findings = []
    for py_file in python_files:
        try:
            source = (root / py_file).read_bytes()
        except OSError:
            continue
        if not any(m in source for m in markers):  # cheap filter before parsing
            continue
        lines = source.decode("utf-8", errors="replace").splitlines()
        for line, text, rel in dangling_in(root, py_file, source, settings):
            snippet = lines[line - 1].strip() if 0 < line <= len(lines) else None
            findings.append(_finding(root, repo, py_file, line, snippet, text, rel))
    return findings


def _finding(
    root: Path, repo: GitRepo | None, py_file: str, line: int, snippet: str | None, text: str, rel: str
) -> Finding:
    found = where_it_went(root, repo, rel)
    hints = f": {'; '.join(found.hints)}" if found.hints else ""
    fix = " or ".join(found.fixes) if found.fixes else f"restore {rel}"
    return Finding(
        Rule.DANGLING_REFERENCE,
        Severity.ERROR,
        f"{py_file}:{line} names {text!r}, which does not exist{hints}",
        checkpoint=rel,
        location=Location(py_file, line, snippet),
        fix=f"Fix the path in {py_file}:{line}, or {fix}",
        details={"literal": text, **found.details},
    )
