"""The fault-injection suite that scripts/faults.py runs: the cases, their world, the probes, the report."""
