"""The entry points: the jobping CLI and the local stack behind `make up`; they import every layer below."""
