"""Image transforms shared by training and benchmarks."""
