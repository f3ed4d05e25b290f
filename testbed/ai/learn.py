"""Small learners in numpy: a Gaussian (Mahalanobis) anomaly detector and an MLP classifier.

No framework: full-batch Adam on a softmax MLP and a ridge-regularised covariance are enough
for the feature vectors the edge computes, train in seconds, and are bit-reproducible from a
seed on one machine. Weights come out as plain arrays that `testbed.ai.graphs` turns into ONNX.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "GaussianDetector",
    "MlpWeights",
    "fit_gaussian",
    "init_mlp",
    "mlp_predict",
    "train_mlp",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class GaussianDetector:
    """Healthy-data mean, whitening matrix (W Wᵀ = Σ⁻¹) and alarm threshold on the score."""

    mean: FloatArray
    whitening: FloatArray
    threshold: float

    def score(self, x: FloatArray) -> FloatArray:
        z = (x - self.mean) @ self.whitening
        return np.asarray(np.sum(z * z, axis=1), dtype=np.float64)


def fit_gaussian(healthy: FloatArray, calibration: FloatArray, *, quantile: float,
                 margin: float, ridge: float = 1e-3) -> GaussianDetector:
    """Fit mean and covariance on `healthy`; threshold from the `calibration` scores.

    The threshold is `margin` times the `quantile` of the calibration (held-back healthy)
    scores, so it is set on data the covariance did not see.
    """
    mean = healthy.mean(axis=0)
    cov = np.cov(healthy, rowvar=False) + ridge * np.eye(healthy.shape[1])
    chol = np.linalg.cholesky(np.linalg.inv(cov))
    partial = GaussianDetector(mean, chol, 0.0)
    threshold = float(np.quantile(partial.score(calibration), quantile)) * margin
    return GaussianDetector(mean, chol, threshold)


@dataclass(frozen=True, slots=True)
class MlpWeights:
    """Input standardization and dense layers (weights `(in, out)`, biases `(out,)`)."""

    mean: FloatArray
    scale: FloatArray
    layers: tuple[tuple[FloatArray, FloatArray], ...]

    def flat(self) -> list[FloatArray]:
        """Every layer array in a fixed order (what federated rounds exchange)."""
        return [a for layer in self.layers for a in layer]

    def with_layers(self, arrays: list[FloatArray]) -> MlpWeights:
        pairs = tuple((arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2))
        return MlpWeights(self.mean, self.scale, pairs)


def init_mlp(rng: np.random.Generator, sizes: tuple[int, ...], mean: FloatArray,
             scale: FloatArray) -> MlpWeights:
    """He-initialised layers for `sizes = (n_in, hidden..., n_out)`."""
    layers = tuple(
        (rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)), np.zeros(n_out))
        for n_in, n_out in itertools.pairwise(sizes))
    return MlpWeights(mean, scale, layers)


def _forward(w: MlpWeights, x: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    acts = [(x - w.mean) / w.scale]
    h = acts[0]
    for i, (weight, bias) in enumerate(w.layers):
        h = h @ weight + bias
        if i < len(w.layers) - 1:
            h = np.maximum(h, 0.0)
            acts.append(h)
    return acts, h


def _softmax(logits: FloatArray) -> FloatArray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def mlp_predict(w: MlpWeights, x: FloatArray) -> FloatArray:
    """Class probabilities per row."""
    return _softmax(_forward(w, x)[1])


def train_mlp(w: MlpWeights, x: FloatArray, y: NDArray[np.int64], *, epochs: int,
              learning_rate: float, l2: float) -> MlpWeights:
    """Full-batch Adam on softmax cross-entropy (+ L2 on weights); returns new weights."""
    n_classes = w.layers[-1][1].shape[0]
    onehot = np.eye(n_classes)[y]
    params = w.flat()
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    current = w
    for step in range(1, epochs + 1):
        acts, logits = _forward(current, x)
        delta = (_softmax(logits) - onehot) / x.shape[0]
        grads: list[FloatArray] = [np.empty(0)] * len(params)
        for i in range(len(current.layers) - 1, -1, -1):
            weight, _ = current.layers[i]
            grads[2 * i] = acts[i].T @ delta + l2 * weight
            grads[2 * i + 1] = delta.sum(axis=0)
            if i:
                delta = (delta @ weight.T) * (acts[i] > 0.0)
        for k, g in enumerate(grads):
            m[k] = beta1 * m[k] + (1 - beta1) * g
            v[k] = beta2 * v[k] + (1 - beta2) * g * g
            m_hat = m[k] / (1 - beta1**step)
            v_hat = v[k] / (1 - beta2**step)
            params[k] = params[k] - learning_rate * m_hat / (np.sqrt(v_hat) + eps)
        current = current.with_layers(params)
    return current
