"""Things people look at: image grids and plots written beside the numbers."""
