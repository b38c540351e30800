"""One module per command. Each exposes add_parser(subparsers) and sets `handler` to a function args -> int."""

COMMANDS = ("scan", "diagnose", "inspect", "explain", "hook", "check", "blame", "register", "init")
