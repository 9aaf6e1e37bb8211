"""Helpers for tests and benchmarks: the real stack in-process or on Ray, the app over ASGI, hostile bodies."""
