"""Pure checks of what sites send: coordinates, times, texts, rate limits."""
