"""Pings: new job groups that fit, sent as one digest through a Prefect notification block or a webhook."""
