"""Prefect flows only: orchestration that reads as extract, transform, load."""
