"""Shared code of every cxloop process: one implementation each of config,
telemetry, messaging, gRPC bootstrap, database and PII handling."""
