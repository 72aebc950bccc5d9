"""The edge for training sites: upload validation, durable acceptance, and the ingest HTTP API."""
