"""Caches in front of a Drive: metadata (listings), content (blocks), read-ahead and write-back."""
