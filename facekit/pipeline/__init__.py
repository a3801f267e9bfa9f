"""Stages that turn inputs into manifests: ``extract_sequences`` (video -> face sequences)."""
