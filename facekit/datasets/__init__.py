"""Dataset builders: image folders -> identity manifests (videos -> sequences live in facekit.pipeline)."""
