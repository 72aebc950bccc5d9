"""Face alignment as pure geometry: five points from dlib's 68 landmarks, and the similarity transform that
maps them onto an embedding model's template (pixels in, a 2x3 affine matrix out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# dlib's 68-point layout (iBUG 300-W): eyes 36-41 and 42-47, nose tip 30, mouth corners 48 and 54.
LEFT_EYE = range(36, 42)
RIGHT_EYE = range(42, 48)
NOSE_TIP = 30
MOUTH_LEFT = 48
MOUTH_RIGHT = 54


def five_points_from_68(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """(5, 2) pixels: left eye centre, right eye centre, nose tip, left and right mouth corners (image left/right)."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks (x, y), got shape {p.shape}")
    return np.stack([p[list(LEFT_EYE)].mean(axis=0), p[list(RIGHT_EYE)].mean(axis=0), p[NOSE_TIP],
                     p[MOUTH_LEFT], p[MOUTH_RIGHT]])


def similarity_transform(src: Sequence[Sequence[float]] | np.ndarray,
                         dst: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, translation; no reflection) taking `src` points
    onto `dst` points (Umeyama 1991), as a 2x3 matrix for an affine warp."""
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    if s.shape != d.shape or s.ndim != 2 or s.shape[1] != 2 or s.shape[0] < 2:
        raise ValueError("need two equal lists of at least two (x, y) points")
    mu_s, mu_d = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - mu_s, d - mu_d
    var_s = float((sc ** 2).sum()) / len(s)
    if var_s <= 1e-12:
        raise ValueError("the source points coincide")
    u, sig, vt = np.linalg.svd(dc.T @ sc / len(s))
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rotation = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum()) / var_s
    translation = mu_d - scale * rotation @ mu_s
    out: np.ndarray = np.hstack([scale * rotation, translation[:, None]])
    return out
