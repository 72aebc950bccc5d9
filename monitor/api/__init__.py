"""HTTP routes of the center (one module per resource) and the HTTP plumbing they share."""
