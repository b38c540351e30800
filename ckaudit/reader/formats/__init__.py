"""The checkpoint formats the reader knows, one module each, dispatched by content in `reader/__init__.py`:
torch.save zip archives (`torchzip`, over `zipview`/`zipopen`), the legacy tar (`tarformat`) and pickle
(`legacy`, `pickles`) formats, safetensors, torch.distributed.checkpoint folders (`dcp`), sharded-checkpoint
indexes (`index`) and numpy files (`numpyfile`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.reader.formats.dcp import METADATA, read_dcp
    from ckaudit.reader.formats.index import parse_index, read_index
    from ckaudit.reader.formats.numpyfile import NPY_MAGIC, NUMPY_FORMAT, read_npy
    from ckaudit.reader.formats.pickles import PICKLE_FORMAT, read_pickle_file
    from ckaudit.reader.formats.safetensors import looks_like_safetensors, read_safetensors
    from ckaudit.reader.formats.tarformat import TAR_FORMAT, read_tar, tarfile_accepts
    from ckaudit.reader.formats.torchzip import read_torch_zip

__all__ = [
    "METADATA",
    "NPY_MAGIC",
    "NUMPY_FORMAT",
    "PICKLE_FORMAT",
    "TAR_FORMAT",
    "looks_like_safetensors",
    "parse_index",
    "read_dcp",
    "read_index",
    "read_npy",
    "read_pickle_file",
    "read_safetensors",
    "read_tar",
    "read_torch_zip",
    "tarfile_accepts",
]

__getattr__ = lazy_exports(__name__, __file__)
