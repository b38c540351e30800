"""The ways forward a fix names when a checkpoint no longer loads, in one wording for every finding.

Light on purpose (no reader, no worker): the policy imports it on the hook's fast path.
"""

from __future__ import annotations

EXPECT_FAILS = "mark it `expect: fails` with a `reason:` in ckaudit.yaml"
_OR_EXPECT_FAILS = f", or {EXPECT_FAILS}."
_ALL_WAYS = ", mark it `expect: fails` with a `reason:`, or remove it from the registry."


def with_removal(fix: str) -> str | None:
    """A fix ending `…, or mark it expect: fails …` with the registry's last way forward in the same
    sentence (`…, mark it expect: fails with a reason:, or remove it from the registry.`), for a change the
    hook blocks; None when the fix does not end so."""
    if not fix.endswith(_OR_EXPECT_FAILS):
        return None
    return fix[: -len(_OR_EXPECT_FAILS)] + _ALL_WAYS
