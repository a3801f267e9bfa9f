"""Training from manifests: recipes, data, the SeqFace and aggregator trainers, DDP helpers, checkpoints."""
