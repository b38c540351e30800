"""Git, read and never written: repository queries and read-only trees of commits, the index and the
working tree."""
