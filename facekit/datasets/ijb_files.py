"""NIST's IJB-B / IJB-C protocol files as distributed: their names and the columns every 1:N CSV must have.
Read by the benchmark (``facekit.bench.ijb``), written by the fixture and demo layouts (``datasets.layouts``)."""

REQUIRED = ("TEMPLATE_ID", "SUBJECT_ID", "FILENAME", "SIGHTING_ID", "FACE_X", "FACE_Y", "FACE_WIDTH", "FACE_HEIGHT")
LANDMARKS = ("RIGHT_EYE_X", "RIGHT_EYE_Y", "LEFT_EYE_X", "LEFT_EYE_Y", "NOSE_X", "NOSE_Y")
GALLERY_FILES = {"IJBB": ("ijbb_1N_gallery_S1.csv", "ijbb_1N_gallery_S2.csv"),
                 "IJBC": ("ijbc_1N_gallery_G1.csv", "ijbc_1N_gallery_G2.csv")}
PROBE_FILES = {"IJBB": "ijbb_1N_probe_mixed.csv", "IJBC": "ijbc_1N_probe_mixed.csv"}
MATCH_FILES = {"IJBB": "ijbb_11_S1_S2_matches.csv", "IJBC": "ijbc_11_G1_G2_matches.csv"}
