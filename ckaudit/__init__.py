"""ckaudit: will every registered checkpoint still load, and if not, is it the code, the repository or the environment?"""

__version__ = "0.1.0"
