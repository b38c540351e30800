"""The installed distributions a model's build used, as the project's interpreter sees them now — read from
the `*.dist-info` folders on its `sys.path`, without running it — and the finding for a checkpoint that
stopped loading when one of them changed version while the repository's code stayed the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from ckaudit.findings import Finding, Rule, Severity

Changes = Mapping[str, tuple[str | None, str | None]]  # distribution -> (version before, version now)


def canonical(name: str) -> str:
    """PEP 503 normalisation: `Foo_Bar.baz` and `foo-bar-baz` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions(paths: Iterable[str], names: Iterable[str]) -> dict[str, str | None]:
    """name -> version of the first distribution of that name on `paths` (sys.path order); None: absent."""
    wanted = {canonical(n): n for n in names}
    found: dict[str, str | None] = dict.fromkeys(wanted.values())
    seen: set[str] = set()
    for folder in paths:
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        for entry in entries:
            name = _distribution_name(entry)
            if name is None or name in seen or name not in wanted:
                continue
            seen.add(name)
            found[wanted[name]] = _version(Path(folder) / entry)
    return found


def _distribution_name(entry: str) -> str | None:
    for suffix in (".dist-info", ".egg-info"):
        if entry.endswith(suffix):
            return canonical(entry[: -len(suffix)].split("-")[0])
    return None


def _version(meta: Path) -> str | None:
    """The `Version:` header of METADATA (dist-info) or PKG-INFO (egg-info, a folder or a file)."""
    for candidate in (meta / "METADATA", meta / "PKG-INFO", meta):
        try:
            with open(candidate, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return None


def changes(
    recorded: Mapping[str, str], installed: Mapping[str, str | None]
) -> dict[str, tuple[str, str | None]]:
    """The recorded distributions whose installed version is another one now (or that are gone)."""
    return {
        name: (version, installed.get(name))
        for name, version in recorded.items()
        if installed.get(name) != version
    }


def describe(changed: Changes) -> str:
    """`torch 2.3.0 -> 2.4.0, numpy (absent) -> 2.0.0`, sorted by name, for a message."""
    return ", ".join(
        f"{name} {old or '(absent)'} -> {new or '(absent)'}" for name, (old, new) in sorted(changed.items())
    )


def package_version_finding(
    path: str,
    model: str | None,
    changed: Changes,
    errors: Iterable[Finding],
    severity: Severity,
    where: str = "",
) -> Finding:
    """One finding for a break that came with a package upgrade; the code-side errors are its evidence."""
    errors = list(errors)
    first = errors[0] if errors else None
    evidence = f": {first.message}" if first is not None else ""
    return Finding(
        Rule.PACKAGE_VERSION,
        severity,
        f"{path} loaded{where} with the same code before {describe(changed)}, and fails now{evidence}",
        checkpoint=path,
        model=model,
        location=first.location if first is not None else None,
        fix=f"Pin the version that loads it ({_pins(changed)}), or re-save or convert the checkpoint for the "
        "new version.",
        details={
            "packages": {name: {"before": old, "now": new} for name, (old, new) in sorted(changed.items())},
            "rules": sorted({f.rule.value for f in errors}),
        },
    )


def _pins(changed: Changes) -> str:
    return (
        ", ".join(f"{name}=={old}" for name, (old, _new) in sorted(changed.items()) if old) or "the old one"
    )
