"""The synthetic sample's generator (scripts/generate_sample.py runs it): tables in data/, drawn from with one seed."""
