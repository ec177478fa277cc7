"""The lake's Delta tables, the DuckDB catalog of views over them, and saved queries."""

import os

# delta-rs allocates with its own jemalloc, which by default keeps freed pages and one arena per
# thread, so a long-running analyse process grows with every append commit; returning freed pages at
# once, from one arena, keeps it flat (bench/RESULTS.md, Memory: 8,000 postings against 1,000).
# jemalloc reads this variable at its first allocation, so it is set before deltalake is imported
# (storage.delta does). No thread caches either: jemalloc's per-thread caches of freed objects, over
# delta-rs's and polars' threads, raise the peak of a long drain. polars sets the variable too, when
# imported, to its defaults followed by what was there; jemalloc takes the last value of each option,
# so ours go last, unless the user set any.
ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"
ALLOCATOR_SETTINGS = "narenas:1,dirty_decay_ms:0,muzzy_decay_ms:0,tcache:false"
POLARS_ALLOCATOR_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"

if (configured := os.environ.get(ALLOCATOR_VARIABLE)) in (None, "", POLARS_ALLOCATOR_DEFAULT):
    os.environ[ALLOCATOR_VARIABLE] = ",".join(filter(None, [configured, ALLOCATOR_SETTINGS]))
