"""The only code that imports torch runs here, in a subprocess under the project's interpreter.

`server.py` is that subprocess (standard library and torch only); `client.py` drives it from ckaudit.
"""
