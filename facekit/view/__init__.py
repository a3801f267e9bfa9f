"""facekit view: a local web viewer over roots, curation and benchmark reports."""
