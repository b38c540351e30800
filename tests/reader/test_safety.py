"""The safety policy on benign files real libraries write: never `unsafe-pickle`, `weights-only-blocked`
exactly when torch.load(weights_only=True) refuses, and every add_safe_globals line printed makes it load.

The malicious side is tests/reader/test_attacks.py.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import pathlib
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ckaudit.files.engine import FileScope, check_file
from ckaudit.findings import Finding, Rule
from ckaudit.reader.safety import ALLOWED, classify_globals
from tests.conftest import requires_torch
from tests.reader import reader_fixtures as fx

pytestmark = requires_torch
ROOT = Path(__file__).resolve().parents[2]


def test_static_allowlist_equals_torch() -> None:
    from torch._weights_only_unpickler import _get_allowed_globals

    assert set(_get_allowed_globals()) == ALLOWED


def test_called_globals_are_unsafe_unless_inert_or_trusted() -> None:
    names = ["mypkg.config.TrainConfig", "argparse.Namespace", "torch._utils._rebuild_tensor_v2"]
    called = classify_globals(names, calls=names)
    assert called.unsafe == ("mypkg.config.TrainConfig",)  # an unknown class, instantiated: fail closed
    assert called.fixable == ("argparse.Namespace",)
    assert "torch._utils._rebuild_tensor_v2" not in called.blocked
    trusted = classify_globals(names, calls=names, trusted=["mypkg.config.TrainConfig"])
    assert trusted.unsafe == ()
    assert trusted.fixable == ("argparse.Namespace", "mypkg.config.TrainConfig")


def test_referenced_globals_are_unsafe_unless_inert() -> None:
    """A name only referenced is still resolved by a full torch.load, importing its module: unless it is
    inert or trusted it cannot be proven harmless, code-running list or not."""
    verdict = classify_globals(["mypkg.Mode", "posix.system", "torch.os.system", "argparse.Namespace"])
    assert verdict.unsafe == ("mypkg.Mode", "posix.system", "torch.os.system")
    assert verdict.fixable == ("argparse.Namespace",)
    trusted = classify_globals(["mypkg.Mode"], trusted=["mypkg.Mode"])
    assert trusted.unsafe == () and trusted.fixable == ("mypkg.Mode",)


def test_unresolved_callees_are_unsafe_even_when_trusted() -> None:
    verdict = classify_globals(
        ["<dynamic>.<unresolved>", "__builtin__.eval"], calls=["<dynamic>.<unresolved>"], trusted=["x.Y"]
    )
    assert verdict.unsafe == (
        "<dynamic>.<unresolved>",
        "builtins.eval",
    )  # python 2 names mapped as torch does


def _numpy_objects() -> dict[str, Any]:
    import numpy as np

    return {
        "numpy_scalar": {"best": np.float64(0.5), "step": np.int64(3)},
        "numpy_arrays": {
            "mean": np.zeros(3),
            "ids": np.arange(4, dtype=np.uint8),
            "obj": np.array([1, "a"], object),
        },
        "numpy_rng_state": {"np_rng": np.random.get_state()},
        "numpy_generators": {"gen": np.random.default_rng(0), "legacy": np.random.RandomState(0)},
    }


def _benign_objects() -> dict[str, Any]:
    """name -> what real training code saves (torch.save)."""
    import torch
    from omegaconf import OmegaConf
    from transformers import TrainerState

    scaler = torch.amp.GradScaler("cpu")
    return {
        "plain": {"w": torch.ones(2), "nested": {"b": torch.zeros(1)}, "step": 3, "names": ["a"]},
        "training": fx.training_checkpoint(),
        "amp_scaler": {"scaler": scaler.state_dict(), "w": torch.ones(1)},
        **_numpy_objects(),
        "namespace": {
            "args": argparse.Namespace(
                lr=0.1, out=pathlib.Path("/runs/a"), when=datetime.datetime(2024, 1, 2, 3, 4, 5)
            )
        },
        # weights_only refuses to fill these whatever is allowed: blocked, with no add_safe_globals line
        "std_containers": {
            "queue": collections.deque([1, 2]),
            "counts": collections.defaultdict(list, a=[1]),
        },
        "omegaconf": {
            "cfg": OmegaConf.create({"model": {"dim": 4, "layers": [1, 2]}, "lr": 0.1, "on": True})
        },
        "trainer_state": {"state": TrainerState(global_step=3, log_history=[{"loss": 1.0}])},
    }


def _as_written_by_numpy1(source: Path, out: Path) -> None:
    """The same checkpoint as numpy < 2 pickles it: `numpy.core.multiarray` (numpy 2: `numpy._core`)."""
    import zipfile

    with zipfile.ZipFile(source) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    fx.replace_data_pkl(source, data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"), out)


def _fix_line(finding: Finding) -> str | None:
    match = re.search(r"`(import [^`]*add_safe_globals\(\[[^`]*\]\))`", finding.fix)
    return match.group(1) if match else None


def _weights_only_loads(path: Path) -> bool:
    import torch

    try:
        torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError):  # RuntimeError: TorchScript archives
        return False
    return True


def _check(folder: Path, name: str, trusted: tuple[str, ...] = ()) -> list[Finding]:
    result, _info = check_file(FileScope(folder, trusted_globals=trusted), None, name)
    return result.findings


_APPLY = """
import json, sys, torch
ran = {}
for path, line in json.loads(sys.argv[1]):
    torch.serialization.clear_safe_globals()
    exec(line, {})
    try:
        torch.load(path, weights_only=True)
        ran[path] = "loads"
    except Exception as exc:
        ran[path] = f"{type(exc).__name__}: {str(exc)[-600:]}"
print(json.dumps(ran))
"""


def _apply_fixes(fixes: list[tuple[str, str]], cwd: Path) -> dict[str, str]:
    """Each printed line, pasted before torch.load(weights_only=True) in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _APPLY, json.dumps(fixes)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _assert_benign(folder: Path, names: list[str], trusted: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """No unsafe-pickle; weights-only-blocked exactly when torch refuses; the fixes that it prints."""
    fixes = []
    for name in names:
        findings = _check(folder, name, trusted)
        rules = [f.rule for f in findings]
        assert Rule.UNSAFE_PICKLE not in rules, (name, [f.message for f in findings])
        blocked = Rule.WEIGHTS_ONLY_BLOCKED in rules
        assert blocked is not _weights_only_loads(folder / name), name
        lines = [line for f in findings if (line := _fix_line(f))]
        if name.startswith("scripted"):  # torch refuses every TorchScript archive: torch.jit.load instead
            assert not lines and all("torch.jit.load" in f.fix for f in findings), name
        elif name.startswith("std_containers"):
            assert blocked and not lines, name
        else:
            assert bool(lines) is blocked, name
        fixes += [(str(folder / name), line) for line in lines]
    return fixes


@pytest.mark.slow
def test_benign_checkpoints_and_their_printed_fixes(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    names = []
    for name, obj in _benign_objects().items():
        torch.save(obj, tmp_path / f"{name}.pt")
        names.append(f"{name}.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "scripted.pt")
    save_file({"w": torch.ones(2)}, tmp_path / "weights.safetensors")
    _as_written_by_numpy1(tmp_path / "numpy_arrays.pt", tmp_path / "numpy1_arrays.pt")
    names += ["scripted.pt", "weights.safetensors", "numpy1_arrays.pt"]
    fixes = _assert_benign(tmp_path, names)
    assert len(fixes) >= 6  # numpy, namespace, omegaconf, trainer state need one
    assert set(_apply_fixes(fixes, tmp_path).values()) == {"loads"}


def test_user_class_is_unsafe_until_the_repository_trusts_it(tmp_path: Path) -> None:
    import torch

    torch.save({"cfg": fx.UserThing(), "w": torch.ones(1)}, tmp_path / "user.pt")
    untrusted = _check(tmp_path, "user.pt")
    assert [f.rule for f in untrusted] == [Rule.UNSAFE_PICKLE]
    assert "trusted_globals" in untrusted[0].fix and "add_safe_globals([" not in untrusted[0].fix
    trusted = _assert_benign(tmp_path, ["user.pt"], trusted=("tests.reader.reader_fixtures.UserThing",))
    assert [line.split("add_safe_globals")[1] for _, line in trusted] == [
        "([tests.reader.reader_fixtures.UserThing])"
    ]


@pytest.mark.slow
def test_user_class_fix_loads(tmp_path: Path) -> None:
    import torch

    torch.save({"cfg": fx.UserThing()}, tmp_path / "user.pt")
    fixes = _assert_benign(tmp_path, ["user.pt"], trusted=("tests.reader.reader_fixtures.UserThing",))
    assert set(_apply_fixes(fixes, tmp_path).values()) == {"loads"}


_LIGHTNING = """
import sys, warnings
warnings.filterwarnings("ignore")
import torch, lightning as L
from omegaconf import OmegaConf

class Tiny(L.LightningModule):
    def __init__(self, lr=0.1, cfg=None):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(2, 1)
    def training_step(self, batch, i):
        return self.layer(batch[0]).sum()
    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 1)}

data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 2)), batch_size=2)
trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, accelerator="cpu")
trainer.fit(Tiny(cfg=OmegaConf.create({"model": {"dims": [1, 2]}})), data)
trainer.save_checkpoint(sys.argv[1])
"""


@pytest.mark.slow
def test_real_lightning_trainer_checkpoint(tmp_path: Path) -> None:
    """Written by a real lightning.Trainer (hyper-parameters holding an OmegaConf config)."""
    pytest.importorskip("lightning")
    subprocess.run(
        [sys.executable, "-c", _LIGHTNING, str(tmp_path / "lightning.ckpt")],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    fixes = _assert_benign(tmp_path, ["lightning.ckpt"])
    assert fixes and "omegaconf.dictconfig.DictConfig" in fixes[0][1]
    assert set(_apply_fixes(fixes, tmp_path).values()) == {"loads"}


def test_modules_that_act_on_import_are_never_resolved() -> None:
    """The model side imports the modules a pickle names to tell missing classes; it skips code-running
    names, which include modules with import-time effects and any `__main__`."""
    from ckaudit.reader.code_running import runs_code

    acting = ["antigravity.fly", "this.s", "idlelib.idle.x", "unittest.__main__.main", "venv.__main__.x"]
    assert all(runs_code(name) for name in acting)
    assert classify_globals(acting).unsafe == tuple(sorted(acting))
    assert not runs_code("mypkg.models.Net") and not runs_code("argparse.Namespace")
