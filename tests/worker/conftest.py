"""One model worker for the whole session of these tests (torch is imported once)."""

from tests.modeltools import worker  # noqa: F401  (a fixture)
