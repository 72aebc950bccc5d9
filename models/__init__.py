"""Domain types shared by every part of the dispatch center; imports nothing of ours."""
