"""A sharded index whose shard is absent is `file-missing` naming the shard and how to fetch it — not
`truncated` with the advice to fetch the index again."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.numpy import save_file

from ckaudit.files.engine import FileScope, check_file
from ckaudit.findings import Rule
from ckaudit.vcs import queries
from tests.conftest import git


def _index(folder: Path) -> str:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"a": np.zeros(2, dtype=np.float32)}, folder / "model-00001-of-00002.safetensors")
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return f"{folder.name}/model.safetensors.index.json"


def test_missing_shard_outside_git(tmp_path: Path) -> None:
    rel = _index(tmp_path / "llm")
    result, info = check_file(FileScope(root=tmp_path), None, rel)
    assert info is None
    (finding,) = result.findings
    assert finding.rule is Rule.FILE_MISSING
    assert "llm/model-00002-of-00002.safetensors" in finding.message
    assert finding.details["shard"] == "llm/model-00002-of-00002.safetensors"
    assert "huggingface-cli download REPO_ID model-00002-of-00002.safetensors --local-dir llm" in (
        finding.fix or ""
    )
    assert "index" not in (finding.fix or "").split("from where")[0]  # never "fetch the index again"


def test_missing_shard_stored_with_lfs(git_repo: Path) -> None:
    (git_repo / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    rel = _index(git_repo / "llm")
    git(git_repo, "add", ".gitattributes", rel)
    repo = queries.find_repo(git_repo)
    result, _info = check_file(FileScope(root=git_repo, repo=repo), None, rel)
    (finding,) = result.findings
    assert finding.rule is Rule.FILE_MISSING
    assert "Git LFS" in finding.message
    assert "git lfs pull --include=llm/model-00002-of-00002.safetensors" in (finding.fix or "")
