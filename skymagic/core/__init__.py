"""Credentials, config, the per-context client, targets and fan-out."""
