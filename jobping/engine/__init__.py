"""The analyse engine: plain Python behind three protocols (a queue, a lake, an analyser).

It holds the rules that make at-least-once delivery safe: delete only after a durable write,
each message's outcome decided by that message alone, budgets, the heartbeat and the outage
rule. It imports no Prefect; the analyse flow builds the real queue, lake and analyser and
wires the engine into tasks, logs and artifacts.
"""
