"""Adapters of the edge: image headers and structure, the content-addressed evidence store."""
