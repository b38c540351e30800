"""What the worker answers, as frozen data for ckaudit's torch-free side (compat, hook, blame)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ckaudit.findings import Location
from ckaudit.reader import StateDictCandidate, TensorInfo, flatten

ErrorKind = Literal["raised", "timeout", "crashed"]


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str  # torch's name without "torch.": "float32"
    persistent: bool = True  # False: a buffer registered with persistent=False (never in a state dict)
    buffer: bool = False  # a buffer, not a parameter


@dataclass(frozen=True)
class ModelError:
    message: str  # "ValueError: bad width" / "timed out after 3 s" / "the worker exited with status 3"
    kind: ErrorKind
    location: Location | None = None  # the last frame inside the repository
    traceback: str = ""  # the tail of the traceback or of the worker's stderr


@dataclass(frozen=True)
class ModelBuild:
    ok: bool
    signature: Mapping[str, TensorSpec] = field(default_factory=dict)
    locations: Mapping[str, Location] = field(default_factory=dict)  # module/param qualname -> defining line
    sources: tuple[str, ...] = ()  # repository files imported while building, relative to the root
    device: Literal["meta", "cpu"] = "meta"
    error: ModelError | None = None
    meta_error: str | None = None  # why the build fell back to CPU, when it did
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)  # what it was built with (flat)
    distributions: Mapping[str, str] = field(default_factory=dict)  # installed packages the build used

    def state_keys(self) -> list[str]:
        """The keys a state dict of this model has (persistent entries), in the model's order."""
        return [key for key, spec in self.signature.items() if spec.persistent]

    def location_of(self, key: str) -> Location | None:
        """The defining line of a key: its own, else its closest module's (`fc1.weight` -> `fc1`)."""
        parts = key.split(".")
        for cut in range(len(parts), -1, -1):
            found = self.locations.get(".".join(parts[:cut]))  # cut 0: "", the model's class statement
            if found is not None:
                return found
        return None


@dataclass(frozen=True)
class LoadOutcome:
    loads: bool  # torch's own verdict for this strictness (before ckaudit's ignore globs)
    build: ModelBuild
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    size_mismatch: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()  # key, checkpoint, model
    error_text: str | None = None  # torch's message, verbatim
    other_errors: tuple[str, ...] = ()  # messages of custom load hooks that are none of the above


@dataclass(frozen=True)
class LoaderResult:
    """What the project's loader function made of a state dict (`load: {loader: ...}`)."""

    candidate: StateDictCandidate | None  # None: the loader failed
    error: ModelError | None
    sources: tuple[str, ...]  # repository files imported to run it


def loader_from_wire(data: Mapping[str, Any], key: str) -> LoaderResult:
    """A `loader` answer: the state dict the project's loader produced (as a candidate under `key`), or its
    error, and the files it imported."""
    error = data.get("error")
    tensors = data.get("tensors")
    candidate = None
    if tensors is not None:
        infos = {k: TensorInfo(k, tuple(shape), dtype) for k, shape, dtype in tensors}
        candidate = StateDictCandidate(key, infos, data.get("metadata"))
    sources = tuple(data.get("sources") or ())
    return LoaderResult(candidate, error_from_wire(error) if error else None, sources)


def build_from_wire(data: Mapping[str, Any]) -> ModelBuild:
    """A `build` answer as a ModelBuild (signature entries are [shape, dtype, persistent, is a buffer];
    older answers lack the last)."""
    error = data.get("error")
    return ModelBuild(
        ok=bool(data.get("ok")),
        signature={
            k: TensorSpec(tuple(v[0]), v[1], bool(v[2]), len(v) > 3 and bool(v[3]))
            for k, v in (data.get("signature") or {}).items()
        },
        locations={k: Location(v[0], v[1], v[2] or None) for k, v in (data.get("locations") or {}).items()},
        sources=tuple(data.get("sources") or ()),
        device="cpu" if data.get("device") == "cpu" else "meta",
        error=error_from_wire(error) if error else None,
        meta_error=data.get("meta_error"),
        hyperparameters=flatten(data.get("hyperparameters") or {}),
        distributions=dict(data.get("distributions") or {}),
    )


def error_from_wire(data: Mapping[str, Any]) -> ModelError:
    """A build or loader error: message, kind (`raised`, `timeout`, …), the repository location and the
    traceback's tail."""
    where = data.get("location")
    location = Location(where[0], where[1], where[2] or None) if where else None
    return ModelError(data["message"], data.get("kind", "raised"), location, data.get("traceback", ""))


def outcome_from_wire(data: Mapping[str, Any] | None, build: ModelBuild) -> LoadOutcome:
    """A dry run's answer; without one (the build failed) the checkpoint does not load."""
    if data is None:
        return LoadOutcome(loads=False, build=build)
    return LoadOutcome(
        loads=data["error_text"] is None,
        build=build,
        missing=tuple(data["missing"]),
        unexpected=tuple(data["unexpected"]),
        size_mismatch=tuple((k, tuple(a), tuple(b)) for k, a, b in data["size_mismatch"]),
        error_text=data["error_text"],
        other_errors=tuple(data["other_errors"]),
    )
