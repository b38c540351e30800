"""`explain` on torch's load failures as every version since 0.3 worded them, and on paraphrased titles.

The corpus (tests/data/explain/torch_messages.yaml) records, for each text, the torch version and source
file the wording comes from and the cause it must map to; today's wordings are also raised for real in
test_messages.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ckaudit.explain.messages import explain_text
from ckaudit.findings import Rule
from tests.docs_details import undocumented

CORPUS = Path(__file__).resolve().parents[1] / "data" / "explain" / "torch_messages.yaml"
ENTRIES: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def test_the_corpus_spans_torch_history() -> None:
    versions = {e["torch"].split("-")[0].split(" ")[0] for e in ENTRIES}
    assert {"0.3.0", "0.4.0", "0.4.1", "1.1", "1.4", "1.13", "2.4", "title"} <= versions
    assert all(e["source"] and e["text"].strip() and Rule(e["rule"]) for e in ENTRIES)


@pytest.mark.parametrize(
    "entry", ENTRIES, ids=[f"{e['torch']}:{e['rule']}:{i}" for i, e in enumerate(ENTRIES)]
)
def test_each_wording_maps_to_its_cause(entry: dict[str, Any], tmp_path: Path) -> None:
    explanation = explain_text(entry["text"], tmp_path)
    rules = [f.rule.value for f in explanation.findings]
    assert rules and rules[0] == entry["rule"], (entry["source"], rules)
    assert explanation.verdict == Rule(entry["rule"]).cause.value
    first = explanation.findings[0]
    if "shapes" in entry:  # which shape is the checkpoint's, whatever the version's word order
        assert [first.details["checkpoint_shape"], first.details["model_shape"]] == entry["shapes"]
    if "keys" in entry:
        assert sorted(first.details["keys"]) == sorted(entry["keys"])
    assert undocumented(explanation.findings) == []
    if "globals" in entry:
        assert all(name in first.message for name in entry["globals"])
