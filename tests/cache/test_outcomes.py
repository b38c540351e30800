"""The content cache: atomic files under the git common dir; a damaged entry is a miss, never an error."""

from __future__ import annotations

import threading
from pathlib import Path

from ckaudit.cache.outcomes import JsonStore, make_key
from ckaudit.finding_codec import finding_dict, finding_from_dict
from ckaudit.findings import Finding, Location, Rule, Severity


def test_put_get_and_damaged_entries(git_repo: Path) -> None:
    cache = JsonStore.for_repo(git_repo)
    assert cache.directory is not None and cache.directory.is_relative_to(git_repo / ".git")
    key = make_key({"a": 1})
    assert cache.get("outcome", key) is None
    cache.put("outcome", key, {"loads": True})
    assert cache.get("outcome", key) == {"loads": True}
    file = next(cache.directory.rglob(f"{key}.json"))
    file.write_text("{not json")
    assert cache.get("outcome", key) is None
    assert JsonStore.for_repo(git_repo, enabled=False).get("outcome", key) is None


def test_concurrent_writers_never_tear_a_file(git_repo: Path) -> None:
    cache = JsonStore.for_repo(git_repo)
    key = make_key({"same": "key"})
    values = [{"writer": i, "payload": "x" * 20000} for i in range(8)]
    threads = [
        threading.Thread(target=lambda v=v: [cache.put("outcome", key, v) for _ in range(20)]) for v in values
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("outcome", key) in values
    assert cache.directory is not None
    assert [p.name for p in cache.directory.rglob("*.json")] == [f"{key}.json"]
    assert list(cache.directory.rglob("*.tmp")) == []  # write_atomic's temporary files are all renamed


def test_keys_are_order_independent() -> None:
    assert make_key({"a": 1, "b": [1, 2]}) == make_key({"b": [1, 2], "a": 1})
    assert make_key({"a": 1}) != make_key({"a": 2})


def test_findings_round_trip() -> None:
    finding = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        "m",
        checkpoint="c.pt",
        model="net",
        location=Location("models/net.py", 9, "self.conv1 = nn.Conv2d(1, 8, 3)"),
        fix="f",
        details={"key": "conv1.weight"},
    )
    assert finding_from_dict(finding_dict(finding)) == finding
