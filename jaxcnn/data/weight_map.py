"""The U-Net paper's pixel-wise loss weight map (Ronneberger et al. 2015, eq. 2).

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

w_c balances the class frequencies; the border term, applied to background pixels (instance id 0)
only, makes the network learn the thin background gaps between touching instances. d1 and d2 are
the Euclidean distances from a pixel's centre to the nearest pixel of the nearest and of the
second-nearest instance (1 for a pixel next to an instance), from scipy's exact distance transform.

Config keys (config.loss; absent keys take the neutral value in brackets):
  w0 [0.0]: the border term's weight (the paper: 10); 0 turns it off.
  sigma [5.0]: its width in pixels (the paper: 5).
  class_balance ["none"]: w_c. "none": 1 for every class. "inverse": the paper's balancing, w_k
    proportional to 1 / (pixels of class k over the training split), normalised so that the mean of
    w_c over the training split's pixels is 1 (w_k = N / (K' n_k), K' the classes present; a class
    absent from the training split gets 0). "sqrt": w_k proportional to 1 / sqrt(n_k), normalised
    the same way (a milder balance). True and False stand for "inverse" and "none".
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

CLASS_BALANCES = ("none", "inverse", "sqrt")
# The border term is below w0 * exp(-18) (about 1.5e-8 w0) once d1 + d2 >= 6 sigma: the distance
# to an instance is computed only in its bounding box widened by this many sigmas.
_REACH_SIGMAS = 6.0


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """The weight map's settings, read from config.loss."""

    w0: float = 0.0
    sigma: float = 5.0
    class_balance: str = "none"


def params_from_config(loss_config) -> LossWeights:
    """config.loss -> LossWeights; ValueError names a bad value (absent keys are neutral)."""
    get = loss_config.get if loss_config is not None else (lambda _k, d: d)
    w0, sigma, balance = get("w0", 0.0), get("sigma", 5.0), get("class_balance", "none")
    if isinstance(balance, bool):
        balance = "inverse" if balance else "none"
    if balance not in CLASS_BALANCES:
        raise ValueError(f"config.loss.class_balance={balance!r}; allowed: {', '.join(CLASS_BALANCES)}")
    if isinstance(w0, bool) or not isinstance(w0, (int, float)) or w0 < 0:
        raise ValueError(f"config.loss.w0 must be a number >= 0, got {w0!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma <= 0:
        raise ValueError(f"config.loss.sigma must be a number > 0, got {sigma!r}")
    return LossWeights(float(w0), float(sigma), balance)


def class_weights(masks, num_classes: int, balance: str = "inverse") -> np.ndarray:
    """w_c per class (float32 [num_classes]) from the class-id masks of the training split.

    Normalised so that the mean of w_c over all pixels of `masks` is 1 (see the module docstring).
    """
    if balance == "none":
        return np.ones((num_classes,), np.float32)
    counts = np.zeros((num_classes,), np.float64)
    for mask in masks:
        counts += np.bincount(np.asarray(mask).ravel(), minlength=num_classes)[:num_classes]
    present = counts > 0
    raw = np.zeros_like(counts)
    raw[present] = 1.0 / (counts[present] if balance == "inverse" else np.sqrt(counts[present]))
    mean = (raw * counts).sum() / counts.sum()
    return (raw / mean).astype(np.float32)


def border_term(instances: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) on background pixels (instance id 0), 0 elsewhere.

    Args:
      instances: int HxW instance ids, 0 = no instance.
      w0, sigma: the paper's 10 and 5 pixels.

    Returns:
      float32 HxW; all zeros when fewer than two instances are present.
    """
    instances = np.asarray(instances)
    ids = np.unique(instances)
    ids = ids[ids > 0]
    out = np.zeros(instances.shape, np.float32)
    if w0 == 0 or len(ids) < 2:
        return out
    reach = int(np.ceil(_REACH_SIGMAS * sigma))
    d1 = np.full(instances.shape, np.inf)  # nearest instance's distance
    d2 = np.full(instances.shape, np.inf)  # second-nearest's
    boxes = ndimage.find_objects(instances)
    for i in ids:
        box = boxes[i - 1]
        window = tuple(
            slice(max(0, s.start - reach), min(n, s.stop + reach))
            for s, n in zip(box, instances.shape, strict=True)
        )
        # Every pixel of instance i lies in its box, so the distances inside the window are exact.
        d = ndimage.distance_transform_edt(instances[window] != i)
        b1, b2 = d1[window], d2[window]
        d2[window] = np.minimum(b2, np.maximum(b1, d))
        d1[window] = np.minimum(b1, d)
    background = instances == 0
    total = d1[background] + d2[background]
    out[background] = w0 * np.exp(-(total**2) / (2.0 * sigma**2))
    return out


def weight_map(
    mask: np.ndarray,
    instances: np.ndarray | None,
    class_w: np.ndarray,
    params: LossWeights,
) -> np.ndarray:
    """The paper's w(x) for one (augmented) example: float32 HxW.

    Args:
      mask: int HxW class ids.
      instances: int HxW instance ids (0 = none) or None (no border term).
      class_w: w_c per class, from class_weights().
      params: w0 and sigma.
    """
    w = np.asarray(class_w, np.float32)[mask]
    if instances is not None and params.w0 > 0:
        w = w + border_term(instances, params.w0, params.sigma)
    return w
