"""Adapters: the database, the bus, the face engine and indexes, tokens, logging, the server."""
