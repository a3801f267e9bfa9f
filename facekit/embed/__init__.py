"""Face feature extractors behind one interface (``FeatureExtractor``) and a registry (``load_extractor``)."""

from facekit.embed.extractors import FeatureExtractor, load_extractor

__all__ = ["FeatureExtractor", "load_extractor"]
