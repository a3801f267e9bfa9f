"""Video input: streaming decode (decord) and shot-cut detection."""
