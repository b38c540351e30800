"""The registry: ckaudit.yaml read into a frozen Config, written back deterministically, and ckaudit.lock
(the checkpoints' state-dict signatures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.registry.config import (
        CONFIG_NAME,
        DEFAULT_EXCLUDE,
        FACTORY,
        CheckpointEntry,
        Config,
        ModelSpec,
        ScanSettings,
        expand_path,
        find_config,
        load_config,
        parse_config,
    )
    from ckaudit.registry.loadsteps import LoadSteps
    from ckaudit.registry.lock import (
        LOCK_NAME,
        Signature,
        info_from_signature,
        lock_of,
        lock_path,
        signature_of,
        update_lock,
    )
    from ckaudit.registry.writer import dump_config, write_atomically

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_EXCLUDE",
    "FACTORY",
    "LOCK_NAME",
    "CheckpointEntry",
    "Config",
    "LoadSteps",
    "ModelSpec",
    "ScanSettings",
    "Signature",
    "dump_config",
    "expand_path",
    "find_config",
    "info_from_signature",
    "load_config",
    "lock_of",
    "lock_path",
    "parse_config",
    "signature_of",
    "update_lock",
    "write_atomically",
]

__getattr__ = lazy_exports(__name__, __file__)
