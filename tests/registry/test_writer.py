"""What ckaudit writes into ckaudit.yaml reads back the same, sorted, byte-identical on every run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ckaudit.registry.config import Config, parse_config
from ckaudit.registry.writer import dump_config, write_atomically
from tests.registry.test_config import FULL


def _without_lines(config: Config) -> Config:
    models = {k: dataclasses.replace(v, line=None) for k, v in config.models.items()}
    checkpoints = tuple(dataclasses.replace(c, line=None) for c in config.checkpoints)
    return dataclasses.replace(config, models=models, checkpoints=checkpoints, path=None)


def test_round_trip_keeps_every_field() -> None:
    config = parse_config(FULL, "ckaudit.yaml", Path("/repo"))
    again = parse_config(dump_config(config), "ckaudit.yaml", Path("/repo"))
    assert _without_lines(again) == _without_lines(config)


def test_output_is_sorted_and_stable() -> None:
    text = (
        "models:\n  zeta: {factory: 'm:Z'}\n  alpha: {factory: 'm:A'}\n"
        "checkpoints:\n  - {path: b.pt, model: zeta}\n  - {path: a.pt, model: alpha}\n"
    )
    dumped = dump_config(parse_config(text, "ckaudit.yaml", Path("/repo")))
    assert dumped.index("alpha:") < dumped.index("zeta:")
    assert dumped.index("path: a.pt") < dumped.index("path: b.pt")
    assert dump_config(parse_config(dumped, "ckaudit.yaml", Path("/repo"))) == dumped


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "ckaudit.yaml"
    target.write_text("old")
    write_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ckaudit.yaml"]
