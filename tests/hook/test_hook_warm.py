"""The hook's scenarios give the same report warm (a forked child of the build server) and cold."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GIT_ENV, git, requires_torch
from tests.modelrepo import BLOCKS, NET, write
from tests.warmtools import statuses, wait_for_server

pytestmark = requires_torch

SCENARIOS = {
    "forward-only": {
        "models/net.py": NET.replace("super().__init__()", "super().__init__()\n        self.s = 2")
    },
    "breaking": {"models/net.py": NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")},
    "imported-module": {
        "models/blocks.py": BLOCKS.replace("nn.Linear(width, classes)", "nn.Linear(width, 5)")
    },
    "renamed-layer": {"models/net.py": NET.replace("self.fc1 = head", "self.head = head")},
    "syntax-error": {"models/net.py": NET + "\ndef broken(:\n"},
    "raises": {
        "models/blocks.py": BLOCKS.replace("    return", "    raise ValueError('no head')\n    return")
    },
    "new-file": {"models/extra.py": "from torch import nn\n\nEXTRA = nn.Linear(2, 2)\n"},
}


def hook(repo: Path, files: list[str], *, cold: bool) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV, HOME=str(repo.parent))
    if cold:
        env["CKAUDIT_NO_SERVER"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "ckaudit", "hook", "--no-cache", "--format", "json", *files],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    # the trees are materialised in fresh temporary folders: their names differ from run to run, cold or warm
    out = re.sub(r"ckaudit-(\w+)-\w{8}", r"ckaudit-\1-TMP", done.stdout)
    return done.returncode, json.loads(out) if out.strip() else {}


@pytest.mark.slow
def test_hook_scenarios_agree_warm_and_cold(model_repo: Path, server_dir: Path) -> None:
    originals = {path: (model_repo / path).read_text() for path in ("models/net.py", "models/blocks.py")}
    write(model_repo, "models/net.py", SCENARIOS["forward-only"]["models/net.py"])
    git(model_repo, "add", "-A")
    hook(model_repo, ["models/net.py"], cold=False)  # cold (no server yet); starts the server after it
    served = wait_for_server()["sessions"]
    for name, files in SCENARIOS.items():
        for path, text in {**originals, **files}.items():
            write(model_repo, path, text)
        git(model_repo, "add", "-A")
        cold = hook(model_repo, sorted(files), cold=True)
        warm = hook(model_repo, sorted(files), cold=False)
        assert warm == cold, name
        served += 1 if cold[1] else 0  # an unimported new file takes the fast path: nothing is built
        assert statuses()[0]["sessions"] == served, f"{name}: the warm run was not served by the server"
        (model_repo / "models/extra.py").unlink(missing_ok=True)
