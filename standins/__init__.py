"""Real local servers standing in for outside services (the OpenAI API; SQS through moto).

For tests, benchmarks and the fault suite; no product code imports them.
"""
