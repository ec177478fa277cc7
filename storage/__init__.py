"""The lake's Delta tables, the DuckDB catalog of views over them, and saved queries."""

import os

# delta-rs allocates with its own jemalloc, which by default keeps freed pages and one arena per
# thread: an analyse process grew by ~40 MB over 800 append commits (bench/RESULTS.md, Memory).
# Returning freed pages at once, from one arena, kept that growth to ~5 MB at the same commit speed.
# jemalloc reads this when delta-rs first allocates, so it is set before deltalake is imported
# (storage.delta does), and a value the user sets wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1,dirty_decay_ms:0,muzzy_decay_ms:0")
