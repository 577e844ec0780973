"""Instance segmentation accuracy: matching of predicted to true objects by intersection over union."""

from __future__ import annotations

from typing import Any

import numpy as np


def iou_matrix(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """IoU of every true object (rows, labels 1..n) with every predicted one (columns, labels 1..m)."""
    t_ids, t = np.unique(truth, return_inverse=True)
    p_ids, p = np.unique(prediction, return_inverse=True)
    overlap = np.zeros((len(t_ids), len(p_ids)), dtype=np.int64)
    np.add.at(overlap, (t.ravel(), p.ravel()), 1)
    t_area, p_area = overlap.sum(1, keepdims=True), overlap.sum(0, keepdims=True)
    union = t_area + p_area - overlap
    iou = overlap / np.maximum(union, 1)
    return iou[t_ids != 0][:, p_ids != 0]


def match(truth: Any, prediction: Any, threshold: float = 0.5) -> dict[str, float]:
    """F1, precision, recall at an IoU threshold, and the mean IoU of the matched pairs.

    At thresholds >= 0.5 a true object can overlap at most one predicted object by more than half, so the
    greedy matching is the optimal one.
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.shape != prediction.shape:
        raise ValueError(f"shapes differ: {truth.shape} and {prediction.shape}")
    iou = iou_matrix(truth, prediction)
    n_true, n_pred = iou.shape
    pairs = np.argwhere(iou > threshold) if iou.size else np.zeros((0, 2), dtype=int)
    order = np.argsort(-iou[pairs[:, 0], pairs[:, 1]]) if len(pairs) else []
    used_t, used_p, matched = set(), set(), []
    for i in order:
        a, b = pairs[i]
        if a not in used_t and b not in used_p:
            used_t.add(a)
            used_p.add(b)
            matched.append(iou[a, b])
    tp = len(matched)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_true + n_pred) if n_true + n_pred else 1.0
    return {
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "mean_matched_iou": float(np.mean(matched)) if matched else 0.0,
        "true": n_true,
        "predicted": n_pred,
    }
