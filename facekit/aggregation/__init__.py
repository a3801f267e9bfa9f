"""Using a trained Face Aggregation Network: load it, fuse sets of faces into one face each (batched, any set
sizes), and feed the benchmarks."""
