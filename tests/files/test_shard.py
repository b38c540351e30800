"""Sharding: every path in exactly one shard, stable when other paths come and go."""

from __future__ import annotations

import pytest

from ckaudit.errors import CkauditError
from ckaudit.files.shard import parse_shard, shard_of

PATHS = [f"checkpoints/run{i:03d}/model.pt" for i in range(200)] + ["a.pt", "weights/b.safetensors"]


def select_shard(paths: list[str], index: int, count: int) -> list[str]:
    """What `scan --shard index/count` checks of `paths` (the scan keeps a path when `shard_of` says so)."""
    return [p for p in paths if shard_of(p, count) == index]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16])
def test_union_of_shards_is_the_whole_without_duplicates(count: int) -> None:
    shards = [select_shard(PATHS, k, count) for k in range(1, count + 1)]
    joined = [p for shard in shards for p in shard]
    assert sorted(joined) == sorted(PATHS)
    assert len(joined) == len(set(joined))


def test_shards_are_reasonably_balanced() -> None:
    sizes = [len(select_shard(PATHS, k, 4)) for k in range(1, 5)]
    assert min(sizes) >= len(PATHS) // 4 // 2, sizes


def test_adding_and_removing_other_paths_does_not_move_a_path() -> None:
    before = {p: shard_of(p, 5) for p in PATHS}
    changed = [p for p in PATHS if "run01" not in p] + [f"new/{i}.pt" for i in range(50)]
    for path in changed:
        if path in before:
            assert select_shard([path], before[path], 5) == [path]
    assert all(shard_of(p, 5) == before[p] for p in changed if p in before)


def test_order_is_preserved_and_dot_slash_is_ignored() -> None:
    shard = select_shard(PATHS, 2, 3)
    assert shard == [p for p in PATHS if p in set(shard)]
    assert shard_of("./a.pt", 3) == shard_of("a.pt", 3)


@pytest.mark.parametrize("text,expected", [("1/1", (1, 1)), ("3/4", (3, 4)), (" 2 / 8 ", (2, 8))])
def test_parse_shard_accepts(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["", "1", "0/4", "5/4", "1/0", "-1/3", "a/b", "1/2/3", "1.5/2"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(CkauditError, match="--shard"):
        parse_shard(text)
