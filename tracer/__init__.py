"""Incident science: readings, anomaly detection, source attribution and response planning."""
