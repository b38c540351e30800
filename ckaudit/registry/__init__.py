"""The registry: ckaudit.yaml read into a frozen Config, written back deterministically, and the
interpreter that runs the project's models."""
