"""ckaudit: will every registered checkpoint still load? If not: the code, the repository or the environment?"""

__version__ = "0.1.0"
