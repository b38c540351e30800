"""The warm server is never used across a change it cannot see: a package installed or upgraded with pip into
the interpreter's site-packages, or another ckaudit. The old server steps down; the run is cold and a new
server starts for the next one."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ckaudit.registry.config import ModelSpec
from ckaudit.worker.client import ModelWorker
from ckaudit.worker.interpreter import probe
from tests.conftest import make_venv, requires_torch
from tests.modeltools import write
from tests.warmtools import wait_for_server

pytestmark = [requires_torch, pytest.mark.slow]  # real pip installs, several servers importing torch
SPEC = ModelSpec(name="m", factory="m:build")
MODEL = "import ckwidth\nfrom torch import nn\n\n\ndef build():\n    return nn.Linear(3, ckwidth.WIDTH)\n"


def wheel(folder: Path, version: str, width: int) -> Path:
    """A real wheel of a one-module distribution `ckwidth` (built by hand: no build backend needed)."""
    info = f"ckwidth-{version}.dist-info"
    files = {
        "ckwidth/__init__.py": f"WIDTH = {width}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: ckwidth\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    path = folder / f"ckwidth-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def pip_install(python: Path, package: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "-q",
        "--no-index",
        "--no-deps",
    ]
    subprocess.run([*command, str(package)], check=True, capture_output=True)


def build_width(python: Path, root: Path) -> tuple[int, bool]:
    found = probe(str(python), root)
    assert found is not None
    with ModelWorker(str(python), timeout=60, warm=found.paths) as worker:
        build = worker.build(SPEC, root)
        assert build.ok, build.error
        return build.signature["weight"].shape[0], worker.warm_sessions == 1


def test_a_pip_upgrade_of_an_imported_package_restarts_the_server(server_dir: Path, tmp_path: Path) -> None:
    python = make_venv(tmp_path / "venv", torch=True)
    pip_install(python, wheel(tmp_path, "1.0", 4))
    root = tmp_path / "repo"
    write(root, "m.py", MODEL)
    assert build_width(python, root) == (4, False)  # cold; the server starts after it
    first = wait_for_server()
    assert build_width(python, root) == (4, True)  # warm; the server learns and preloads ckwidth
    pip_install(python, wheel(tmp_path, "2.0", 7))
    assert build_width(python, root) == (7, False)  # refused as stale: cold, never the preloaded 1.0
    second = wait_for_server(pid=first["pid"])
    assert build_width(python, root) == (7, True)
    assert second["pid"] != first["pid"]


SCRIPT = """
import json, sys
from pathlib import Path
from ckaudit.registry.config import ModelSpec
from ckaudit.worker.client import ModelWorker
paths = [p for p in sys.path if p and "site-packages" in p]
with ModelWorker(sys.executable, timeout=60, warm=paths) as worker:
    build = worker.build(ModelSpec(name="m", factory="m:build"), Path(sys.argv[1]))
    print(json.dumps({"warm": worker.warm_sessions, "ok": build.ok}))
"""


def test_another_ckaudit_restarts_the_server(server_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(Path(__file__).resolve().parents[2] / "ckaudit", copy / "ckaudit")
    root = tmp_path / "repo"
    write(root, "m.py", "from torch import nn\n\n\ndef build():\n    return nn.Linear(3, 4)\n")

    def run() -> bool:
        import os

        env = {**os.environ, "PYTHONPATH": str(copy)}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(root)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=tmp_path,  # not this checkout: its ckaudit would come first on sys.path
        )
        answer = json.loads(done.stdout)
        assert answer["ok"]
        return bool(answer["warm"])

    assert not run()
    first = wait_for_server()
    assert run()
    findings = copy / "ckaudit" / "findings.py"
    findings.write_text(findings.read_text() + "\n# a new ckaudit\n")
    assert not run()  # the old server refuses the new client and steps down
    second = wait_for_server(pid=first["pid"])
    assert run() and second["pid"] != first["pid"]
