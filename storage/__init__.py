"""The Parquet lake, the DuckDB catalog of views over it, and saved queries."""
