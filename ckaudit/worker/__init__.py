"""The only code that imports torch runs here, in a subprocess under the project's interpreter.

`server.py` is that subprocess (standard library and torch only); `client.py` drives it from ckaudit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.worker.client import Incident, ModelWorker
    from ckaudit.worker.interpreter import (
        Interpreter,
        InterpreterNotFound,
        find_interpreter,
        probe,
        resolve_python,
    )
    from ckaudit.worker.results import LoadOutcome, ModelBuild, ModelError
    from ckaudit.worker.sources import ModelSources, model_sources
    from ckaudit.worker.warmclient import ask, server_dir, servers, stop_all, unavailable

__all__ = [
    "Incident",
    "Interpreter",
    "InterpreterNotFound",
    "LoadOutcome",
    "ModelBuild",
    "ModelError",
    "ModelSources",
    "ModelWorker",
    "ask",
    "find_interpreter",
    "model_sources",
    "probe",
    "resolve_python",
    "server_dir",
    "servers",
    "stop_all",
    "unavailable",
]

__getattr__ = lazy_exports(__name__, __file__)
