"""Face quality measures and filters."""
