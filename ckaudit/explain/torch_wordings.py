"""Torch's load failures as every version since 0.3 worded them, and as people paraphrase them in titles.

`load_state_dict` raised `KeyError('unexpected key "…" in state_dict')` and `missing keys in state_dict:
"{…}"` in 0.3, `While copying the parameter named …, whose dimensions in the model are … and whose
dimensions in the checkpoint are …` in 0.3/0.4.0, `size mismatch for …: copying a param of <model shape>
from checkpoint, where the shape is <checkpoint shape> in current model` in 0.4.1–1.0 (the two shapes the
other way round than the words say: torch formatted the model's first), and today's `copying a param with
shape … from checkpoint, the shape in current model is …` since 1.1. Serialization wordings are in
`HISTORICAL_LOAD`. tests/data/explain/torch_messages.yaml holds one real text per wording with its version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ckaudit.findings import Rule

_SHAPE = r"(?:torch\.Size\()?\[?([\d, ]*)\]?\)?"
# (regex, which group is the checkpoint's shape, which the model's)
_SIZE_WORDINGS = (
    (
        re.compile(
            rf"size mismatch for (\S+): copying a param with shape {_SHAPE} from checkpoint, "
            rf"the shape in current model is {_SHAPE}",
            re.IGNORECASE,
        ),
        2,
        3,
    ),
    (  # 0.4.1-1.0: the model's shape is printed first, whatever the words say
        re.compile(
            rf"size mismatch for (\S+): copying a param of {_SHAPE} from checkpoint, "
            rf"where the shape is {_SHAPE} in current model",
            re.IGNORECASE,
        ),
        3,
        2,
    ),
    (  # 0.3 and 0.4.0
        re.compile(
            rf"While copying the parameter named \"?([^\s\",]+)\"?, whose dimensions in the model are "
            rf"{_SHAPE} and whose dimensions in the checkpoint are {_SHAPE}",
            re.IGNORECASE,
        ),
        3,
        2,
    ),
)
_KEY_LIST = re.compile(
    r"(Missing|Unexpected) key\(s\) in state_dict: ((?:\"[^\"]*\"(?:, )?)+)", re.IGNORECASE
)
_OLD_UNEXPECTED = re.compile(r"unexpected key \"([^\"]+)\" in state_dict", re.IGNORECASE)
_OLD_MISSING = re.compile(r"missing keys in state_dict: \"?\{([^}]*)\}", re.IGNORECASE)


def size_mismatches(text: str) -> list[tuple[str, str, str]]:
    """(key, checkpoint shape, model shape) for every size-mismatch line, in any torch's wording."""
    found: dict[tuple[str, str, str], None] = {}
    for regex, saved, wanted in _SIZE_WORDINGS:
        for match in regex.finditer(text):
            found[(match.group(1), _dims(match.group(saved)), _dims(match.group(wanted)))] = None
    return list(found)


def _dims(text: str) -> str:
    return ", ".join(part.strip() for part in text.split(",") if part.strip())


def key_lists(text: str) -> tuple[list[str], list[str]]:
    """(missing, unexpected) keys named in the text: the 0.4+ lists and the 0.3 KeyErrors."""
    lists: dict[str, list[str]] = {"missing": [], "unexpected": []}
    for kind, quoted in _KEY_LIST.findall(text):
        lists[kind.lower()].extend(re.findall(r'"([^"]*)"', quoted))
    lists["unexpected"].extend(_OLD_UNEXPECTED.findall(text))
    for inside in _OLD_MISSING.findall(text):
        lists["missing"].extend(re.findall(r"\\?'([^'\\]*)\\?'", inside))  # a KeyError's repr escapes them
    return list(dict.fromkeys(lists["missing"])), list(dict.fromkeys(lists["unexpected"]))


@dataclass(frozen=True)
class Wording:
    rule: Rule
    regex: re.Pattern[str]
    message: str
    fix: str


def _w(rule: Rule, regex: str, message: str, fix: str) -> Wording:
    return Wording(rule, re.compile(regex, re.IGNORECASE | re.MULTILINE), message, fix)


_OLD_TORCH = (
    "The file was saved by a newer torch (>= 1.6 writes zip archives) than the one loading it: upgrade "
    "torch where it is loaded, or re-save it with `torch.save(sd, path, _use_new_zipfile_serialization="
    "False)`."
)
# What stopped torch.load, in wordings today's table does not cover; checked before it.
HISTORICAL_LOAD = (
    _w(
        Rule.TORCH_VERSION,
        r"Attempted to read a PyTorch file with version (\d+),? but the maximum supported version",
        "the file's archive format version is newer than the loading torch can read",
        _OLD_TORCH,
    ),
    _w(
        Rule.TORCH_VERSION,
        r"is a zip archive \(did you mean to use torch\.jit\.load\(\)\?\)",
        "a torch older than 1.6 met a zip-format checkpoint (or a TorchScript file went to torch.load)",
        _OLD_TORCH + " A TorchScript file (`torch.jit.save`) loads with `torch.jit.load`.",
    ),
    _w(
        Rule.TORCH_VERSION,
        r"Cannot use ``?weights_only=True``? with files saved in the legacy \.tar format",
        "the file is in torch's legacy tar format, which weights_only loading cannot read",
        "Re-save it with a current torch (`torch.save(torch.load(path, weights_only=False), path2)` on a "
        "trusted file only).",
    ),
    _w(
        Rule.DEVICE,
        r"Attempting to deserialize object on (?:a )?CUDA device(?: \d+)? but torch\.cuda\."
        r"(?:device_count\(\) is \d+|is_available\(\) is False)",
        "the storages were saved on a GPU device this machine does not have",
        'Load with `torch.load(path, map_location="cpu")` (or a device you have, e.g. "cuda:0").',
    ),
    _w(
        Rule.CORRUPT,
        r"Invalid magic number; corrupt file\?|storage has wrong (?:byte )?size",
        "the legacy-format file is damaged (wrong magic number or storage size)",
        "Fetch or re-save the file; compare its sha256 with the original.",
    ),
    _w(
        Rule.NOT_A_CHECKPOINT,
        r"PytorchStreamReader failed locating file \S*data\.pkl",
        "the zip archive is not a torch checkpoint (no data.pkl inside)",
        "Check what the file really is (`ckaudit inspect FILE`); download or copy the real checkpoint.",
    ),
    _w(
        Rule.CORRUPT,
        r"PytorchStreamReader failed reading file .*(?:invalid header|corrupted)",
        "an archive member of the checkpoint is damaged",
        "Fetch or re-save the file; compare its sha256 with the original.",
    ),
)


@dataclass(frozen=True)
class _Meaning:
    rule: Rule
    needs: tuple[tuple[str, ...], ...]  # every group must have one of its words in the text
    message: str


# Issue titles and paraphrases: no exact wording, but the words say which failure it is.
_MEANINGS = (
    _Meaning(Rule.LFS_POINTER, (("lfs",), ("pointer", "load", "invalid", "pull")), "a Git LFS pointer"),
    _Meaning(Rule.TRUNCATED, (("central directory", "truncated", "ran out of input", "eof"),), "a cut file"),
    _Meaning(Rule.WEIGHTS_ONLY_BLOCKED, (("weights_only", "weights only", "weights-only"),), "weights_only"),
    _Meaning(
        Rule.DEVICE,
        (("cuda", "gpu"), ("cpu", "map_location", "no gpu", "without gpu", "device")),
        "GPU storages on a machine without that GPU",
    ),
    _Meaning(Rule.KEY_PREFIX, (('"module.', "'module.", " module.", "dataparallel", "ddp"),), "a prefix"),
    _Meaning(
        Rule.SHAPE_MISMATCH, (("size", "shape", "dimension"), ("mismatch", "differ", "wrong")), "a resize"
    ),
    _Meaning(Rule.MISSING_KEYS, (("missing key", "missing keys", "keys missing"),), "missing keys"),
    _Meaning(Rule.UNEXPECTED_KEYS, (("unexpected key", "unexpected keys", "extra keys"),), "unexpected keys"),
)


def by_meaning(text: str) -> Iterator[tuple[Rule, str]]:
    """(rule, what it reads as) for text that names a failure without torch's exact words."""
    lowered = text.lower()
    for meaning in _MEANINGS:
        if all(any(word in lowered for word in group) for group in meaning.needs):
            yield meaning.rule, meaning.message
            return
