"""The pages (wall screen, site phone page), their vendored assets and the live WebSocket hub."""
