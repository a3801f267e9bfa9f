"""Face detection: MTCNN in PyTorch with the weights of the installed ``mtcnn`` package."""

from facekit.detect.mtcnn import MTCNN, Detections

__all__ = ["MTCNN", "Detections"]
