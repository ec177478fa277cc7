"""Units of work around one outside system each: JobSpy, SQS, the LLM."""
