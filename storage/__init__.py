"""The lake's Delta tables, the DuckDB catalog of views over them, and saved queries."""

import os

# delta-rs allocates with its own jemalloc, which by default keeps freed pages and one arena per
# thread: an analyse process grew by ~40 MB over 800 append commits. Returning freed pages at once,
# from one arena, kept that growth to ~5 MB at the same commit speed (bench/RESULTS.md, Memory).
# jemalloc reads this variable at its first allocation, so it is set before deltalake is imported
# (storage.delta does). No thread caches either: jemalloc's per-thread caches of freed objects, over
# delta-rs's and polars' threads, held ~20 MB more at the peak of an 8,000-posting drain (259 against
# 280 MB). polars sets the variable too, when imported, to its defaults followed by what was there;
# jemalloc takes the last value of each option, so ours go last, unless the user set any.
ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"
ALLOCATOR_SETTINGS = "narenas:1,dirty_decay_ms:0,muzzy_decay_ms:0,tcache:false"
POLARS_ALLOCATOR_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"

if (configured := os.environ.get(ALLOCATOR_VARIABLE)) in (None, "", POLARS_ALLOCATOR_DEFAULT):
    os.environ[ALLOCATOR_VARIABLE] = ",".join(filter(None, [configured, ALLOCATOR_SETTINGS]))
