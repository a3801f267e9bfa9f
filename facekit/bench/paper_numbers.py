"""Published numbers printed beside facekit's in reports (aggregation paper Tables 1, 3, 4; SeqFace Table 2)."""

# Face Aggregation Network, Table 1 (YTF, DAN protocol): (N, n_avg) -> accuracy %, "avg" baseline and best "ours"
YTF_DAN_TABLE1 = {
    "avg": {(1, 2): 95.80, (5, 2): 96.40, (10, 2): 96.32, (10, 4): 96.34, (10, 6): 96.34, (10, 8): 96.52},
    "aggregator": {(1, 2): 95.90, (5, 2): 96.52, (10, 2): 96.56, (10, 4): 96.60, (10, 6): 96.48, (10, 8): 96.62},
}
# Table 4 (N = 10, n_avg = 4, motion blur on 9 of 10 frames): filter size -> accuracy %
YTF_BLUR_TABLE4 = {
    "avg": {7: 96.28, 9: 95.90, 11: 95.40, 13: 94.78, 15: 93.76, 17: 92.66},
    "aggregator": {7: 96.50, 9: 96.48, 11: 96.40, 13: 96.18, 15: 95.82, 17: 95.92},
}
# Table 3: mean over both galleries of TPIR % at rank 1 and at FPIR = 0.01
IJB_TABLE3 = {
    "IJBB": {"avg": (89.54, 75.81), "aggregator": (90.44, 75.93)},
    "IJBC": {"avg": (89.18, 72.06), "aggregator": (90.67, 77.44)},
}
# SeqFace Table 2: ResNet-27 / ResNet-64 trained on MS-Celeb-1M + Celeb-Seq
SEQFACE_TABLE2 = {"LFW": {"ResNet-27": 99.80, "ResNet-64": 99.83}, "YTF": {"ResNet-27": 98.0, "ResNet-64": 98.12}}
# How each paper scored the numbers above, printed beside them so like is compared with like
PAPER_PROTOCOL = {
    "seqface": "scored by SeqFace's evaluate.py: one best cosine threshold on all pairs (--threshold best-on-all)",
    "dan": "10-fold on the official splits (FAN paper section 4.2; its scoring code is not public)",
}
