"""Error text (a traceback, a CI log, a bug report) -> the cause, the rule and the fix."""
