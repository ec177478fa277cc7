"""Judging postings: the offline analyser now, an LLM where one is configured."""
