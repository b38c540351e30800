"""Which interpreter runs the model worker: the project's, since model code imports the project's packages.

Under pre-commit, ckaudit itself runs in pre-commit's hook environment: `VIRTUAL_ENV` names it and its
`bin` leads `PATH`, and it has no torch. So no candidate is trusted by where it comes from; each is probed
(a short subprocess: can it find torch, and what is on its `sys.path`?) and the first that has torch wins.

Order: `python:` of ckaudit.yaml (a path — relative to the root, `~` and `$VARS` expanded — or a command
looked up on `PATH`); else the repository's `.venv`/`venv`/`env` (uv's, poetry's and pipenv's in-project
environments are `.venv`), `$CONDA_PREFIX`, `$UV_PROJECT_ENVIRONMENT`, poetry's and pipenv's environments of
this project kept outside it, `$VIRTUAL_ENV`, ckaudit's own interpreter, and `python3` on `PATH`. Probes are
cached on disk by the interpreter's path and mtime and the mtimes of its `sys.path` folders, so installing
torch (or anything) into an environment invalidates its record.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckaudit import proc
from ckaudit.errors import CkauditError
from ckaudit.registry import CONFIG_NAME, Config, expand_path

_PROBE = r"""
import importlib.util, json, sys
torch = None
if importlib.util.find_spec("torch") is not None:
    try:
        import importlib.metadata as metadata
        torch = metadata.version("torch")
    except Exception:
        torch = "unknown"
print(json.dumps({"torch": torch, "python": sys.version.split()[0], "paths": [p for p in sys.path if p]}))
"""
_PROBE_VERSION = 1
IN_REPOSITORY = (".venv", "venv", "env")  # environment folders at the root, in the order they are tried
_probes: dict[tuple[str, str | None], Interpreter | None] = {}  # (python, $PYTHONPATH) -> what it is


class InterpreterNotFound(CkauditError):
    """No candidate interpreter can import torch; the message lists what was tried and the fix."""


@dataclass(frozen=True)
class Interpreter:
    path: str  # as found (a venv's python is often a symlink: keep the venv's path, not its target)
    torch: str  # torch's version there
    python: str  # the interpreter's own version
    paths: tuple[str, ...]  # its sys.path folders (where its distributions are installed)


def resolve_python(config: Config) -> str:
    """The path of the interpreter the registry's models are built with (`find_interpreter`'s rules)."""
    return find_interpreter(config).path


def find_interpreter(config: Config) -> Interpreter:
    """The first candidate that can import torch, or InterpreterNotFound listing what was tried."""
    tried: list[str] = []
    for candidate, origin in _candidates(config):
        found = probe(candidate, config.root)
        if found is not None and found.torch:
            return found
        why = "no torch there" if found else "does not run" if os.path.exists(candidate) else "does not exist"
        tried.append(f"{candidate} ({origin}): {why}")
    raise InterpreterNotFound(_not_found_message(config, tried))


def _not_found_message(config: Config, tried: list[str]) -> str:
    where = config.path or config.root / CONFIG_NAME
    listing = "\n".join(f"  - {line}" for line in tried) or "  - (no candidate exists)"
    return (
        "no Python interpreter that can import torch was found for building the models; tried:\n"
        f"{listing}\n"
        f"Add one line to {where}, naming the interpreter of your project's environment, e.g.:\n"
        "  python: .venv/bin/python\n"
        "(`--files-only` runs the file checks without torch.)"
    )


def _candidates(config: Config) -> Iterator[tuple[str, str]]:
    if config.python:  # an explicit choice is not second-guessed: no fallback beyond it
        yield from _configured(config, config.python)
        return
    root = config.root
    for name in IN_REPOSITORY:
        if name != "env" or (root / name / "pyvenv.cfg").is_file():  # projects use `env/` for other things
            yield from _env_python(root / name, f"the repository's {name}")
    for variable in ("CONDA_PREFIX", "UV_PROJECT_ENVIRONMENT"):
        if os.environ.get(variable):
            yield from _env_python(_under_root(root, os.environ[variable]), f"${variable}")
    for folder, origin in _project_envs(root):
        yield from _env_python(folder, origin)
    if os.environ.get("VIRTUAL_ENV"):
        yield from _env_python(Path(os.environ["VIRTUAL_ENV"]), "$VIRTUAL_ENV")
    yield sys.executable, "ckaudit's own interpreter"
    for found in _on_path("python3"):
        yield found, "python3 on PATH"


def _configured(config: Config, python: str) -> Iterator[tuple[str, str]]:
    origin = f"python: {python} in {CONFIG_NAME}"
    if "/" not in python and os.sep not in python and not python.startswith(("~", "$")):
        found = list(_on_path(python))
        if not found:
            yield python, f"{origin}, not found on PATH"
        for path in found:
            yield path, origin
        return
    yield str(_under_root(config.root, python)), origin


def _under_root(root: Path, text: str) -> Path:
    path = Path(expand_path(text))
    return path if path.is_absolute() else root / path


def _env_python(prefix: Path, origin: str) -> Iterator[tuple[str, str]]:
    for relative in ("bin/python", "bin/python3", "Scripts/python.exe"):
        if (prefix / relative).exists():
            yield str(prefix / relative), origin
            return


def _on_path(command: str) -> Iterator[str]:
    """Every `command` on PATH, in order (pre-commit's environment leads PATH; the probe rules it out)."""
    seen: set[str] = set()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which(command, path=folder) if folder else None
        if found and found not in seen:
            seen.add(found)
            yield found


def _project_envs(root: Path) -> Iterator[tuple[Path, str]]:
    """Poetry and pipenv keep a project's environment outside it, named after the project and a hash of its
    path: the folder with this project's hash first, then any of the project's name (the hash of a moved
    clone differs; the probe still asks each for torch)."""
    home = Path.home()
    name = _project_name(root)
    poetry = Path(
        os.environ.get("POETRY_VIRTUALENVS_PATH")
        or Path(os.environ.get("POETRY_CACHE_DIR") or home / ".cache" / "pypoetry") / "virtualenvs"
    )
    if name and poetry.is_dir():
        exact = sorted(poetry.glob(f"{_env_slug(name, str(root))}-py*"))
        for folder in dict.fromkeys([*exact, *sorted(poetry.glob(f"{name}-*-py*"))]):
            yield folder, "poetry's environment for this project"
    pipenv = Path(os.environ.get("WORKON_HOME") or home / ".local" / "share" / "virtualenvs")
    custom = os.environ.get("PIPENV_CUSTOM_VENV_NAME")
    if pipenv.is_dir():
        exact = [pipenv / (custom or _env_slug(root.name, str(root / "Pipfile")))]
        named = sorted(pipenv.glob(f"{glob.escape(_clean(root.name))}-*"))
        for folder in dict.fromkeys([*exact, *named]):
            if folder.is_dir():
                yield folder, "pipenv's environment for this project"


def _env_slug(name: str, location: str) -> str:
    """`name-HASH` as poetry (of the project's folder) and pipenv (of its Pipfile) name the environments they
    keep outside a project: the first 8 characters of the urlsafe base64 of the path's sha256."""
    clean = _clean(name)
    digest = hashlib.sha256(os.path.normcase(os.path.realpath(location)).encode()).digest()
    return f"{clean}-{base64.urlsafe_b64encode(digest).decode()[:8]}"


def _clean(name: str) -> str:
    """A project name as poetry and pipenv write it into an environment's folder name."""
    return re.sub(r'[ $`!*@"\\\r\n\t()\[\]&]', "_", name)[:42]


def _project_name(root: Path) -> str | None:
    """pyproject.toml's project name as poetry normalises it (lower case, `_`/`.` to `-`)."""
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def probe(python: str, root: Path) -> Interpreter | None:
    """What `python` is (torch version, sys.path), from the disk cache when nothing changed; None: no run."""
    pythonpath = os.environ.get("PYTHONPATH")  # part of the interpreter's sys.path
    memo = (python, pythonpath)
    if memo in _probes:
        return _probes[memo]
    from ckaudit.cache import JsonStore, make_key

    try:
        stat = os.stat(python)
    except OSError:
        return None
    cache = JsonStore.for_repo(root)
    key = make_key({"v": _PROBE_VERSION, "python": python, "mtime": stat.st_mtime_ns, "env": pythonpath})
    record = cache.get("interpreter", key)
    if record is None or not _still_valid(record):
        record = _run_probe(python)
        if record is not None:
            cache.put("interpreter", key, record)
    found = _from_record(python, record) if record is not None else None
    _probes[memo] = found
    return found


def _run_probe(python: str) -> dict[str, Any] | None:
    try:
        out = proc.run([python, "-c", _PROBE], cwd="/", timeout=60).stdout
        data = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
    except (proc.CommandError, ValueError, IndexError):
        return None
    paths = [p for p in data.get("paths", []) if isinstance(p, str)]
    return {**data, "stamps": {p: _mtime(p) for p in paths}}


def _still_valid(record: dict[str, Any]) -> bool:
    stamps = record.get("stamps")
    return isinstance(stamps, dict) and all(_mtime(p) == m for p, m in stamps.items())


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _from_record(python: str, record: dict[str, Any]) -> Interpreter:
    return Interpreter(
        path=python,
        torch=str(record.get("torch") or ""),
        python=str(record.get("python") or ""),
        paths=tuple(record.get("stamps") or ()),
    )
