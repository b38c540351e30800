"""The stat-keyed verification cache: hits only for unchanged files, atomic writes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ckaudit.cache import verify as verify_cache
from ckaudit.cache.verify import Verification, VerifyCache


@pytest.fixture(autouse=True)
def _no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_cache, "RACY_NS", 0)


def test_hit_then_miss_on_change(tmp_path: Path) -> None:
    cache = VerifyCache(tmp_path / "cache")
    file = tmp_path / "m.pt"
    file.write_bytes(b"abc")
    result = Verification(sha256="0" * 64, problems=({"rule": "corrupt", "message": "m", "details": {}},))
    cache.put(file, [file.stat()], result)
    assert cache.get(file, [file.stat()], need_sha256=True) == result
    file.write_bytes(b"abd")  # same size, new content
    assert cache.get(file, [file.stat()], need_sha256=False) is None


def test_entry_without_sha256_does_not_answer_a_sha256_question(tmp_path: Path) -> None:
    cache = VerifyCache(tmp_path / "cache")
    file = tmp_path / "m.pt"
    file.write_bytes(b"abc")
    cache.put(file, [file.stat()], Verification(sha256=None))
    assert cache.get(file, [file.stat()], need_sha256=False) == Verification(sha256=None)
    assert cache.get(file, [file.stat()], need_sha256=True) is None


def test_disabled_and_corrupt(tmp_path: Path) -> None:
    file = tmp_path / "m.pt"
    file.write_bytes(b"abc")
    disabled = VerifyCache(None)
    disabled.put(file, [file.stat()], Verification(sha256=None))
    assert disabled.get(file, [file.stat()], need_sha256=False) is None
    cache = VerifyCache(tmp_path / "cache")
    cache.put(file, [file.stat()], Verification(sha256=None))
    (entry,) = (tmp_path / "cache").iterdir()
    entry.write_text("{not json")
    assert cache.get(file, [file.stat()], need_sha256=False) is None


def test_racy_files_are_not_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_cache, "RACY_NS", 10**12)
    cache = VerifyCache(tmp_path / "cache")
    file = tmp_path / "m.pt"
    file.write_bytes(b"abc")
    cache.put(file, [file.stat()], Verification(sha256=None))
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_concurrent_writers_leave_a_whole_entry(tmp_path: Path) -> None:
    cache = VerifyCache(tmp_path / "cache")
    file = tmp_path / "m.pt"
    file.write_bytes(b"abc")
    results = [Verification(sha256=f"{i:064x}") for i in range(8)]

    def write(result: Verification) -> None:
        for _ in range(25):
            cache.put(file, [file.stat()], result)

    threads = [threading.Thread(target=write, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get(file, [file.stat()], need_sha256=True) in results
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")] == []
