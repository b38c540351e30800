"""Caches under the git directory: verification results by stat, dry-run outcomes by content."""
