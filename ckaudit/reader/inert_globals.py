"""ckaudit's curated list of data-only globals that real checkpoints carry beyond torch's allowlist.

A name is here only when calling or instantiating it with pickled arguments, and then BUILDing it with
pickled state, runs no code beyond building data: no imports, no I/O, no evaluation, no lookup of further
names by string. Arguments these callables themselves call are recorded as called by the pickle machine
(`pickle/argument_callers.py`), so an inert callable cannot smuggle in a dangerous one. Anything not listed
is unsafe when a pickle calls it; a repository vouches for its own classes with `trusted_globals:`.

Decided and left out, on purpose:
- `transformers.training_args.TrainingArguments` (`training_args.bin`): unpickling skips `__post_init__`,
  but the pickle instantiates `accelerate.state.PartialState` (process-wide distributed state) and a dozen
  enum classes whose `_missing_` hooks are library code; its properties set up devices when read. Not
  data-only: a repository that keeps it lists it in `trusted_globals`.
- `functools.partial`, `operator.*getter`, `copyreg.__reduce_ex__`, `builtins.getattr`/`type`: they call
  or resolve what they are given.
- enum classes (`mypkg.Mode(1)` calls the class; `_missing_` is user code), dataclasses and every other
  user class: only their owner can vouch for them.
- `torch.nn` modules (whole-model pickles): their `__setstate__` is torch code, but the state carries hooks
  and arbitrary attributes; save a state dict instead.
"""

from __future__ import annotations

# numpy arrays, scalars, dtypes and random generators (np.save'd arrays inside dicts, RNG states).
# `_reconstruct` makes an empty array of the subtype it is given (recorded as instantiated), `ndarray`'s
# __setstate__ copies raw bytes (object arrays hold pickled items, which are walked like any other),
# `scalar` turns bytes into a number, `dtype` parses a type code; the RNG helpers look a bit generator up
# in numpy's own table or instantiate the class passed (recorded), and the generators restore integers.
_NUMPY = (
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox",
    "numpy.random._sfc64.SFC64",
    "numpy.random.bit_generator.SeedSequence",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    "numpy.random.mtrand.RandomState",
    "numpy.random._generator.Generator",
)
# The class numpy.dtype('f8') has since numpy 1.25: BUILD checks it, the stream never names it.
_NUMPY_DTYPE_CLASSES = tuple(
    f"numpy.dtypes.{name}DType"
    for name in (
        *(f"{kind}{bits}" for kind in ("Int", "UInt") for bits in (8, 16, 32, 64)),
        "Float16",
        "Float32",
        "Float64",
        "Float128",
        "Complex64",
        "Complex128",
        "Complex256",
        "Bool",
        "Object",
        "Str",
        "Bytes",
        "Void",
        "DateTime64",
        "TimeDelta64",
    )
)
# Built-in value types: their constructors turn data into data (no attribute lookups by name, no calls of
# their arguments). `object` is the base copyreg._reconstructor names for plain classes.
_BUILTINS = (
    "builtins.list",
    "builtins.dict",
    "builtins.tuple",
    "builtins.frozenset",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bytes",
    "builtins.bool",
    "builtins.slice",
    "builtins.range",
    "builtins.object",
)
# Standard-library holders of plain values: a Namespace/SimpleNamespace BUILDs its __dict__, paths join
# strings (a WindowsPath on POSIX only raises), deque/defaultdict fill from items (defaultdict's factory is
# recorded as called), datetime types unpack bytes. `typing.Any` is only ever referenced (OmegaConf types).
# copyreg's helpers run `cls.__new__` / `base.__init__` on classes the machine records as instantiated.
_STDLIB = (
    "argparse.Namespace",
    "types.SimpleNamespace",
    "pathlib.Path",
    "pathlib.PurePath",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "pathlib._local.Path",
    "pathlib._local.PosixPath",
    "pathlib._local.WindowsPath",
    "pathlib._local.PurePosixPath",
    "pathlib._local.PureWindowsPath",
    "collections.deque",
    "collections.defaultdict",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "typing.Any",
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
)
# Training frameworks' config holders, as their checkpoints pickle them:
# - Lightning's `AttributeDict` (`hyper_parameters` of every Lightning checkpoint when hparams are a dict):
#   a dict subclass with attribute access, no __init__/__setstate__ of its own.
# - OmegaConf (Hydra configs in `hyper_parameters`): DictConfig/ListConfig and their nodes and metadata;
#   their __setstate__ updates __dict__ and rebuilds typing annotations from the (audited) key/element
#   types. Interpolations are strings resolved on access by resolvers registered in the loading process.
# - transformers' `TrainerState` (`trainer_state`, when pickled rather than written as JSON): a dataclass
#   of numbers and lists; unpickling does not run __post_init__.
_FRAMEWORKS = (
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "lightning.pytorch.utilities.parsing.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.Metadata",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "omegaconf.nodes.BytesNode",
    "omegaconf.nodes.PathNode",
    "transformers.trainer_callback.TrainerState",
)

# torch.distributed.checkpoint's own `.metadata` classes: dataclasses of names, sizes and offsets (their
# __init__/__setstate__ only assign fields; TensorProperties maps an enum back to a memory format), the
# enum `_MEM_FORMAT_ENCODING` looked up by value. A plain `dcp.save` of tensors names nothing else.
_DCP = (
    *(
        f"torch.distributed.checkpoint.metadata.{name}"
        for name in (
            "Metadata",
            "TensorStorageMetadata",
            "BytesStorageMetadata",
            "ChunkStorageMetadata",
            "TensorProperties",
            "StorageMeta",
            "MetadataIndex",
            "_MEM_FORMAT_ENCODING",
        )
    ),
    "torch.distributed.checkpoint.filesystem._StorageInfo",
)
# TorchScript's pickle helpers (torch/jit/_pickle.py): each returns its argument (`build_intlist(data)`
# is `data`, `restore_type_tag(value, type_str)` is `value`), as torch.jit.save's pickles name them.
_TORCHSCRIPT = tuple(
    f"torch.jit._pickle.{name}"
    for name in (
        "build_intlist",
        "build_tensorlist",
        "build_doublelist",
        "build_boollist",
        "build_tensor_from_id",
        "restore_type_tag",
    )
)

INERT_GLOBALS: frozenset[str] = frozenset(
    (*_NUMPY, *_NUMPY_DTYPE_CLASSES, *_BUILTINS, *_STDLIB, *_FRAMEWORKS, *_DCP, *_TORCHSCRIPT)
)
