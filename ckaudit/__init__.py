"""ckaudit: does every registered checkpoint still load? If not: is it the code, the repository or torch?"""

__version__ = "0.1.0"  # the only place the version is written (pyproject.toml reads it)
