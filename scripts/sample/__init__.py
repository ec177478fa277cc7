"""The synthetic sample's generator, run by scripts/generate_sample.py; its tables are in scripts/sample_data/."""
