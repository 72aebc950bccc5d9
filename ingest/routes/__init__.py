"""HTTP routes for training sites."""
