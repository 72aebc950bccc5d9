"""The demo: a simulator of training sites driving the running server through its API."""
