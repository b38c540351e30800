"""Text reporter: exact output on a hand-built report, 80 columns, colour only on request."""

from __future__ import annotations

import json

from ckaudit.findings import CheckpointResult, Finding, Location, Report, Rule, Severity
from ckaudit.report.json_format import render as json_render
from ckaudit.report.text import SCREENFUL, WIDTH, render

EXPECTED = """\
checkpoints/classifier_a.pth  [ok, 1 warning]  model classifier_a
  warning dtype-change: head.weight is float16 in the checkpoint, float32 in the
      model

checkpoints/classifier_a_for_b.pth  [fails: code]  model classifier_b
  error shape-mismatch: conv1.weight and fc1.weight have other shapes in the
      checkpoint than in the model
      key            checkpoint      model
      conv1.weight   [16, 3, 3, 3]   [16, 1, 3, 3]
      fc1.weight     [10, 10816]     [10, 2704]
      models/classifier.py:25  self.conv1 = nn.Conv2d(1, 16, 3)
      fix: Re-save the checkpoint from the current ModelB, or keep ModelA for
           it: the input channels (3 -> 1) and fc1's input size (10816 -> 2704)
           changed.

checkpoints/tagger_dataparallel.pt  [fails: code]  model tagger
  error key-prefix: every checkpoint key starts with `module.` (saved from
      nn.DataParallel/DDP)
      keys (12):
        module.encoder.{0..11}.weight
      fix: Strip the prefix before loading:
           torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(state_dict,
           'module.')

checkpoints/tagger_v1.pt  [fails: code]  model tagger
  error missing-keys: the model expects 25 keys the checkpoint lacks
      missing keys (25):
        encoder.layers.{0..23}.attn.qkv.weight
        head.weight
      models/tagger.py:14  self.encoder = nn.Sequential(*blocks)
  error renamed-keys: backbone/classifier were renamed encoder/head
      rename:
        backbone.0.weight -> encoder.0.weight
        classifier.weight -> head.weight
      fix: Rename the keys when loading: {k.replace('backbone.', 'encoder.', 1):
           v for k, v in sd.items()}

checkpoints/tagger_with_args.pt  [fails: environment]  model tagger
  error weights-only-blocked: torch.load(weights_only=True) refuses the global
      argparse.Namespace
      fix: torch.serialization.add_safe_globals([argparse.Namespace])

checkpoints/classifier_b_download.pth  [fails: repository]  model classifier_b
  error truncated: the file ends at byte 61,440 of 102,400 (60 %)
      size: 61440
      expected_size: 102400
      fix: Download it again and compare its size and sha256.

weights/extra.safetensors  [ok]  not registered

Other findings
  warning dangling-reference: train.py names checkpoints/classifier_best.pth,
      which does not exist
      train.py:21  state = torch.load("checkpoints/classifier_best.pth")

7 checkpoints: 2 ok, 3 code, 1 repository, 1 environment; 6 errors, 2 warnings.
"""


def _fits(text: str) -> list[str]:
    """Lines over WIDTH that could have been broken: anything but an indent and one unbreakable token."""
    return [line for line in text.splitlines() if len(line) > WIDTH and " " in line.strip()]


def test_snapshot(report: Report) -> None:
    assert render(report) == EXPECTED


def test_readable_at_80_columns(report: Report) -> None:
    assert _fits(render(report)) == []


def test_long_keys_and_snippets_still_fit() -> None:
    key = "encoder.transformer.blocks.11.attention.query_key_value.weight"
    finding = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        "shape changed " * 12,
        checkpoint="c.pt",
        model="m",
        location=Location("models/very/deep/package/transformer_blocks.py", 1234, "x = " + "y" * 120),
        details={"key": key, "checkpoint_shape": [4096, 12288], "model_shape": [4096, 4096, 3]},
    )
    text = render(Report("/r", "scan", (CheckpointResult("c.pt", "m", "zip", 1, 10, (finding,)),)))
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    assert key in text and "[4096, 12288]" in text and "[4096, 4096, 3]" in text


def test_long_key_lists_are_collapsed_and_capped() -> None:
    keys = [f"blocks.{i}.mlp.fc{j}.weight" for i in range(48) for j in range(2)]
    keys += [f"extra{i}.bias" for i in range(20)]
    finding = Finding(Rule.UNEXPECTED_KEYS, Severity.ERROR, "116 unexpected keys", details={"keys": keys})
    text = render(Report("/r", "scan", (CheckpointResult("c.pt", "m", "zip", 1, 10, (finding,)),)))
    assert "unexpected keys (116):" in text
    assert "blocks.{0..47}.mlp.fc1.weight" in text
    assert "… and 15 more" in text


def test_colour_only_on_request(report: Report) -> None:
    assert "\033[" not in render(report)
    coloured = render(report, color=True)
    assert "\033[1;31merror\033[0m shape-mismatch" in coloured
    assert "\033[32m[ok]\033[0m" in coloured


def test_empty_report() -> None:
    assert render(Report("/r", "scan")) == "0 checkpoints: 0 ok; no findings.\n"


def test_details_as_the_compatibility_engine_and_file_checks_write_them() -> None:
    findings = (
        Finding(
            Rule.SHAPE_MISMATCH,
            Severity.ERROR,
            "fc1.weight: [10, 10816] vs [10, 2704]",
            details={"key": "fc1.weight", "checkpoint_shape": [10, 10816], "model_shape": [10, 2704]},
        ),
        Finding(
            Rule.DTYPE_CHANGE,
            Severity.WARNING,
            "2 keys saved as float16",
            details={
                "checkpoint_dtype": "float16",
                "model_dtype": "float32",
                "keys": ["layers.0.w", "layers.1.w"],
            },
        ),
        Finding(
            Rule.WEIGHTS_ONLY_BLOCKED,
            Severity.ERROR,
            "refuses argparse.Namespace",
            details={"blocked": ["argparse.Namespace"]},
        ),
    )
    text = render(Report("/r", "scan", (CheckpointResult("c.pt", "m", "zip", 1, 10, findings),)))
    # what the message already says is not repeated beneath it (the shape row, the blocked global)
    assert "fc1.weight: [10, 10816] vs [10, 2704]\n  warning" in text
    assert "      dtype   float16      float32" in text and "layers.{0..1}.w" in text
    assert "blocked (1)" not in text and "refuses argparse.Namespace\n" in text


def test_a_checkpoint_that_does_not_load_is_headed_fails() -> None:
    already = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.WARNING,
        "already fails at HEAD, unchanged by this change: fc.weight: [2, 4] in the checkpoint, [3, 4] ...",
    )
    missing = Finding(Rule.FILE_MISSING, Severity.ERROR, "c.pt does not exist", checkpoint="c.pt")
    results = (
        CheckpointResult("a.pt", "m", "zip", 2, 10, (already,), loads=False),  # the hook: fails at HEAD too
        CheckpointResult("b.pt", "m", "zip", 2, 10, (), loads=True),
        CheckpointResult("c.pt", "m", None, None, None, (missing,)),
    )
    text = render(Report("/r", "hook", results))
    headers = [line for line in text.splitlines() if line.endswith("model m")]
    assert headers == [
        "a.pt  [fails: code, 1 warning]  model m",  # issue 21: once "[fails, ...]" beside a summary "ok"
        "b.pt  [ok]  model m",
        "c.pt  [fails: repository]  model m",
    ]
    # each checkpoint counted once, under the verdict its header shows: one that does not load is never ok
    assert text.splitlines()[-1] == "3 checkpoints: 1 ok, 1 code, 1 repository; 1 error, 1 warning."
    assert [json.loads(json_render(Report("/r", "hook", results)))["summary"][v] for v in ("ok", "code")] == [
        1,
        1,
    ]


def test_a_long_block_stops_at_a_screenful() -> None:
    findings = tuple(
        Finding(Rule.MISSING_KEYS, Severity.ERROR, f"layer{i}.weight is missing", fix="Re-save it.")
        for i in range(30)
    )
    text = render(Report("/r", "scan", (CheckpointResult("a.pt", "m", "zip", 2, 10, findings),)))
    block = text.split("\n\n")[0].splitlines()
    assert len(block) <= SCREENFUL
    assert block[-1].startswith("  … ") and "more findings (`--format json` lists all)" in block[-1]
    assert (
        len(
            render(
                Report("/r", "scan", (CheckpointResult("a.pt", "m", "zip", 2, 10, findings),)), limit=None
            ).splitlines()
        )
        > 60
    )


def test_counts_are_singular_for_one() -> None:
    from ckaudit.report.summary import render as job_summary

    one = Report("/r", "scan", (CheckpointResult("a.pt", "m", "zip", 1, 1, (), loads=True),))
    assert render(one).splitlines()[-1] == "1 checkpoint: 1 ok; no findings."
    assert "1 checkpoint: 1 ok; no findings." in job_summary(one)


def test_changed_lines_stand_on_their_own_lines() -> None:
    """The changed lines a finding names (as `with_causes` writes them: the message's tail and
    `details.changed`) leave the message and stand under it, three at most."""
    from ckaudit.scan.causes import CHANGED, ChangedLine

    changes = [ChangedLine("models/net.py", n, n, f"w{n} = 64", f"w{n} = 128") for n in range(1, 5)]
    message = "fc resized: fc.weight [64] -> [128]"
    named = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        f"{message}{CHANGED} " + "; ".join(c.describe() for c in changes[:3]) + " (+1 more)",
        details={"key": "fc.weight", "changed": [c.as_dict() for c in changes]},
    )
    lines = render(Report("/r", "scan", (CheckpointResult("a.pt", "m", "zip", 1, 1, (named,)),))).splitlines()
    assert lines[1] == "  error shape-mismatch: fc resized: fc.weight [64] -> [128]"
    assert lines[2:6] == [
        "      changed: models/net.py:1 w1 = 64 -> w1 = 128",
        "      changed: models/net.py:2 w2 = 64 -> w2 = 128",
        "      changed: models/net.py:3 w3 = 64 -> w3 = 128",
        "      … 1 more changed line",
    ]


def test_a_short_code_span_is_never_split_by_wrapping() -> None:
    from ckaudit.report.text import wrap

    text = (
        "x" * 50
        + " then run `ckaudit fix checkpoints/net.pt --registry` to write it, or `a "
        + "b " * 40
        + "`"
    )
    lines = wrap(text, "      fix: ", "           ")
    assert any("`ckaudit fix checkpoints/net.pt --registry`" in line for line in lines)
    assert all(len(line) <= WIDTH for line in lines)
    assert " ".join(line.strip() for line in lines).replace("fix: ", "", 1) == text  # a long span still wraps
