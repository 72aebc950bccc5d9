"""Background services: the worker's pipelines, the outbox relay, the class clock, ledgers."""
