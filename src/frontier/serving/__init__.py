"""Serving: the router ingress, the vLLM pools and the Ray Serve application builder."""
