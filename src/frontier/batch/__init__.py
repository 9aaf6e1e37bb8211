"""The OpenAI Files and Batches API on the Redis task queue: storage, files, batches, workers, routes."""
