"""The lake's Delta tables, the DuckDB catalog of views over them, and saved queries."""
