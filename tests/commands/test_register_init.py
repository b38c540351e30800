"""`register` and `init` on real repositories: what they write, and that they write nothing else."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest

from ckaudit.cli import main
from ckaudit.registry.config import load_config
from tests.conftest import git, requires_torch

SAMPLE = Path(__file__).resolve().parents[2] / "sample_repo"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of sample_repo as its own git repository, without its registry."""
    repo = tmp_path / "sample"
    shutil.copytree(SAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", "ckaudit.yaml"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "sample")
    return repo


def test_register_detects_key_and_hash(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (sample / "ckaudit.yaml").write_text("models:\n  clf: {factory: 'models.classifier:ModelA'}\n")
    path = "checkpoints/classifier_a_epoch12.pt"
    assert main(["register", str(sample / path), "--model", "clf", "--root", str(sample)]) == 0
    entry = load_config(sample / "ckaudit.yaml").checkpoint(path)
    assert entry is not None
    assert entry.model == "clf" and entry.key == "model_state_dict"
    assert entry.sha256 == hashlib.sha256((sample / path).read_bytes()).hexdigest()
    assert "registered" in capsys.readouterr().err


def test_register_keeps_hand_set_fields_and_adds_factory_models(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample / "ckaudit.yaml").write_text(
        "checkpoints:\n"
        "  - {path: checkpoints/tagger_v1.pt, strict: false, ignore: ['*.num_batches_tracked']}\n"
    )
    args = ["register", "checkpoints/tagger_v1.pt", "--model", "models.tagger:Tagger", "--root", str(sample)]
    monkeypatch.chdir(sample)
    assert main(args) == 0
    first = (sample / "ckaudit.yaml").read_text()
    assert main(args) == 0  # registering again changes nothing
    assert (sample / "ckaudit.yaml").read_text() == first
    config = load_config(sample / "ckaudit.yaml")
    assert config.models["tagger"].factory == "models.tagger:Tagger"
    (entry,) = config.checkpoints
    assert entry.strict is False and entry.ignore == ("*.num_batches_tracked",) and entry.model == "tagger"


@pytest.mark.parametrize(
    ("file", "model", "message"),
    [
        ("checkpoints/tagger_large.pt", "tagger", "lfs-pointer"),
        ("checkpoints/nothing.pt", "tagger", "no such file"),
        ("checkpoints/tagger_v1.pt", "unknown", "unknown model"),
    ],
)
def test_register_refuses_clearly(
    sample: Path, capsys: pytest.CaptureFixture[str], file: str, model: str, message: str
) -> None:
    (sample / "ckaudit.yaml").write_text("models:\n  tagger: {factory: 'models.tagger:Tagger'}\n")
    before = (sample / "ckaudit.yaml").read_text()
    assert main(["register", str(sample / file), "--model", model, "--root", str(sample)]) == 2
    assert message in capsys.readouterr().err
    assert (sample / "ckaudit.yaml").read_text() == before


@requires_torch
@pytest.mark.slow  # builds every model of sample_repo
def test_init_pairs_checkpoints_with_the_models_they_load_into(sample: Path) -> None:
    status_before = git(sample, "status", "--porcelain")
    assert main(["init", str(sample)]) == 0
    config = load_config(sample / "ckaudit.yaml")
    assert config.models["model_a"].factory == "models.classifier:ModelA"
    assert config.models["tagger"].factory == "models.tagger:Tagger"
    paired = {e.path: e.model for e in config.checkpoints}
    assert paired["checkpoints/classifier_a.pth"] == "model_a"
    assert paired["checkpoints/classifier_b.pth"] == "model_b"
    # saved from wrappers: paired once the prefix is stripped, as the project's own loader would
    for wrapped, prefix in (("tagger_dataparallel.pt", "module."), ("tagger_compiled.pt", "_orig_mod.")):
        entry = config.checkpoint(f"checkpoints/{wrapped}")
        assert entry is not None and entry.model == "tagger"
        assert entry.load is not None and entry.load.strip_prefix == (prefix,)
    assert paired["checkpoints/tagger_large.pt"] is None  # an LFS pointer: file checks only
    assert config.checkpoint("checkpoints/classifier_a_epoch12.pt").key == "model_state_dict"  # type: ignore[union-attr]
    # only the registry was added; a second init refuses to overwrite it
    assert git(sample, "status", "--porcelain") == status_before + "?? ckaudit.lock\n?? ckaudit.yaml\n"
    assert main(["init", str(sample)]) == 2


def test_init_without_matching_registers_every_checkpoint(sample: Path) -> None:
    assert main(["init", str(sample), "--no-match"]) == 0
    config = load_config(sample / "ckaudit.yaml")
    assert len(config.checkpoints) == 10
    assert all(e.model is None for e in config.checkpoints)
    assert all(e.sha256 for e in config.checkpoints)


@requires_torch
def test_init_registers_ignored_checkpoints_and_says_which_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checkpoints ignored by git (where most teams keep them) are registered, their signatures locked;
    an ignored file that is no checkpoint is skipped with the reason, in one place."""
    import torch

    from ckaudit.registry.lock import load_lock

    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE / "models", repo / "models", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".gitignore").write_text("*.pt\n*.bin\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "code only")
    shutil.copy(SAMPLE / "checkpoints" / "classifier_a.pth", repo / "weights.pt")  # .pt: ignored
    (repo / "notes.bin").write_text("not a checkpoint\n")
    status_before = git(repo, "status", "--porcelain", "--ignored")
    assert main(["init", str(repo)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "registered 1 checkpoint(s) that are not in git (ignored by git: weights.pt)" in err
    assert "skipped notes.bin (ignored by git): not a readable checkpoint (not-a-checkpoint" in err
    config = load_config(repo / "ckaudit.yaml")
    assert [(e.path, e.model) for e in config.checkpoints] == [("weights.pt", "model_a")]
    assert set(load_lock(repo / "ckaudit.lock")) == {"weights.pt"}
    assert (
        git(repo, "status", "--porcelain", "--ignored")
        == "?? ckaudit.lock\n?? ckaudit.yaml\n" + status_before
    )
    assert torch.load(repo / "weights.pt", weights_only=True)  # the checkpoint itself is untouched


def test_register_remembers_the_model_and_locks_a_hand_written_registry(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A registry written by hand has no lock; the first `register` writes one for every registered
    checkpoint that is here and readable, and re-registering a file needs no --model."""
    from ckaudit.registry.lock import load_lock

    (sample / "ckaudit.yaml").write_text(
        "models:\n  clf: {factory: 'models.classifier:ModelA'}\n  tagger: {factory: 'models.tagger:Tagger'}\n"
        "checkpoints:\n"
        "  - {path: checkpoints/classifier_a.pth, model: clf}\n"
        "  - {path: checkpoints/tagger_large.pt, model: tagger}\n"  # an LFS pointer: nothing to lock
        "  - {path: checkpoints/gone.pt, model: tagger}\n"
    )
    assert not (sample / "ckaudit.lock").exists()
    root = ["--root", str(sample)]
    assert main(["register", str(sample / "checkpoints/tagger_v1.pt"), "--model", "tagger", *root]) == 0
    assert set(load_lock(sample / "ckaudit.lock")) == {
        "checkpoints/classifier_a.pth",
        "checkpoints/tagger_v1.pt",
    }
    before = load_lock(sample / "ckaudit.lock")

    assert main(["register", str(sample / "checkpoints/classifier_a.pth"), *root]) == 0  # no --model
    entry = load_config(sample / "ckaudit.yaml").checkpoint("checkpoints/classifier_a.pth")
    assert entry is not None and entry.model == "clf"
    after = load_lock(sample / "ckaudit.lock")
    # the record is kept, not refreshed; re-registering a checkpoint that loads adds the package versions
    assert {p: dataclasses.replace(s, packages={}) for p, s in after.items()} == {
        p: dataclasses.replace(s, packages={}) for p, s in before.items()
    }
    capsys.readouterr()
    assert main(["register", str(sample / "checkpoints/tagger_with_args.pt"), *root]) == 2
    assert "not registered with a model yet: give --model" in capsys.readouterr().err
