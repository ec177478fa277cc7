"""jobping: scrape job boards, queue postings on SQS, judge them with an LLM, query with DuckDB."""

__version__ = "0.1.0"
