"""API keys, per-key limits held in Redis, input limits and redacting structured logs."""
