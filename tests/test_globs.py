from __future__ import annotations

import pytest

from ckaudit import globs


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("a.pt", "**/*.pt", True),
        ("x/y/a.pt", "**/*.pt", True),
        ("a.pth", "**/*.pt", False),
        ("x/a.pt", "*.pt", True),  # no slash: any depth, as in .gitignore
        (".venv/lib/a.pt", ".venv/**", True),
        ("src/.venv/a.pt", ".venv/**", False),
        ("a/node_modules/b/c.bin", "**/node_modules/**", True),
        ("ck/m.pt", "ck/*.pt", True),
        ("ck/sub/m.pt", "ck/*.pt", False),
    ],
)
def test_matches(path: str, pattern: str, expected: bool) -> None:
    assert globs.matches(path, [pattern]) is expected


def test_name_patterns() -> None:
    assert globs.name_patterns(["**/*.pt", "ck/*.pth", "models/**"]) == ("*.pt", "*.pth")
    assert globs.name_matches("best.pth", ("*.pt", "*.pth"))
    assert not globs.name_matches("best.pth.txt", ("*.pt", "*.pth"))
