"""Routing: request features, policies that turn them into decisions, training and evaluation."""
