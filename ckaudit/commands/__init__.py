"""One module per command: each exposes add_parser(subparsers), which sets `handler` (args -> int)."""

COMMANDS = (
    "scan",
    "diagnose",
    "inspect",
    "explain",
    "hook",
    "check",
    "blame",
    "register",
    "init",
    "fix",
    "server",
)

__all__ = ["COMMANDS"]
