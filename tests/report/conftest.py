"""Hand-built reports shaped like sample_repo's scan, for the reporter tests."""

from __future__ import annotations

import pytest

from ckaudit.findings import CheckpointResult, Finding, Location, Report, Rule, Severity


def sample_report(root: str = "/work/sample_repo") -> Report:
    shape = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        "conv1.weight and fc1.weight have other shapes in the checkpoint than in the model",
        checkpoint="checkpoints/classifier_a_for_b.pth",
        model="classifier_b",
        location=Location("models/classifier.py", 25, "self.conv1 = nn.Conv2d(1, 16, 3)"),
        fix="Re-save the checkpoint from the current ModelB, or keep ModelA for it: the input channels "
        "(3 -> 1) and fc1's input size (10816 -> 2704) changed.",
        details={
            "mismatches": [
                {"key": "conv1.weight", "checkpoint_shape": [16, 3, 3, 3], "model_shape": [16, 1, 3, 3]},
                {"key": "fc1.weight", "checkpoint_shape": [10, 10816], "model_shape": [10, 2704]},
            ]
        },
    )
    prefix = Finding(
        Rule.KEY_PREFIX,
        Severity.ERROR,
        "every checkpoint key starts with `module.` (saved from nn.DataParallel/DDP)",
        checkpoint="checkpoints/tagger_dataparallel.pt",
        model="tagger",
        fix="Strip the prefix before loading: "
        "torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(state_dict, 'module.')",
        details={"prefix": "module.", "keys": [f"module.encoder.{i}.weight" for i in range(12)]},
    )
    missing = Finding(
        Rule.MISSING_KEYS,
        Severity.ERROR,
        "the model expects 25 keys the checkpoint lacks",
        checkpoint="checkpoints/tagger_v1.pt",
        model="tagger",
        location=Location("models/tagger.py", 14, "self.encoder = nn.Sequential(*blocks)"),
        details={"keys": [f"encoder.layers.{i}.attn.qkv.weight" for i in range(24)] + ["head.weight"]},
    )
    renamed = Finding(
        Rule.RENAMED_KEYS,
        Severity.ERROR,
        "backbone/classifier were renamed encoder/head",
        checkpoint="checkpoints/tagger_v1.pt",
        model="tagger",
        fix="Rename the keys when loading: {k.replace('backbone.', 'encoder.', 1): v for k, v in sd.items()}",
        details={"renames": {"backbone.0.weight": "encoder.0.weight", "classifier.weight": "head.weight"}},
    )
    blocked = Finding(
        Rule.WEIGHTS_ONLY_BLOCKED,
        Severity.ERROR,
        "torch.load(weights_only=True) refuses the global argparse.Namespace",
        checkpoint="checkpoints/tagger_with_args.pt",
        model="tagger",
        fix="torch.serialization.add_safe_globals([argparse.Namespace])",
        details={"globals": ["argparse.Namespace"]},
    )
    truncated = Finding(
        Rule.TRUNCATED,
        Severity.ERROR,
        "the file ends at byte 61,440 of 102,400 (60 %)",
        checkpoint="checkpoints/classifier_b_download.pth",
        model="classifier_b",
        fix="Download it again and compare its size and sha256.",
        details={"size": 61440, "expected_size": 102400},
    )
    dtype = Finding(
        Rule.DTYPE_CHANGE,
        Severity.WARNING,
        "head.weight is float16 in the checkpoint, float32 in the model",
        checkpoint="checkpoints/classifier_a.pth",
        model="classifier_a",
        details={"key": "head.weight", "checkpoint_dtype": "float16", "model_dtype": "float32"},
    )
    dangling = Finding(
        Rule.DANGLING_REFERENCE,
        Severity.WARNING,
        "train.py names checkpoints/classifier_best.pth, which does not exist",
        location=Location("train.py", 21, 'state = torch.load("checkpoints/classifier_best.pth")'),
    )
    return Report(
        root=root,
        command="scan",
        checkpoints=(
            CheckpointResult("checkpoints/classifier_a.pth", "classifier_a", "zip", 4, 438_000, (dtype,)),
            CheckpointResult(
                "checkpoints/classifier_a_for_b.pth", "classifier_b", "zip", 4, 438_000, (shape,)
            ),
            CheckpointResult("checkpoints/tagger_dataparallel.pt", "tagger", "zip", 12, 90_000, (prefix,)),
            CheckpointResult("checkpoints/tagger_v1.pt", "tagger", "zip", 25, 90_000, (missing, renamed)),
            CheckpointResult("checkpoints/tagger_with_args.pt", "tagger", "zip", 12, 91_000, (blocked,)),
            CheckpointResult(
                "checkpoints/classifier_b_download.pth", "classifier_b", None, None, 61_440, (truncated,)
            ),
            CheckpointResult(
                "weights/extra.safetensors", None, "safetensors", 2, 1_024, (), registered=False
            ),
        ),
        findings=(dangling,),
    )


@pytest.fixture
def report() -> Report:
    return sample_report()
