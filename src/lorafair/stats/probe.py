"""Linear probe (variant A1): the best linear head a frozen backbone's features allow.

A1 answers "was the information already in the base features?": if a logistic-regression head on
frozen features closes most of the gap between A and B, LoRA mostly re-aimed the head rather than
changing the features. The probe is fitted on the probe-training split only (C by stratified CV
on that split), then the standardisation is folded into a plain linear head, so at evaluation it is
just `features @ weight.T + bias`, the same shape as the model's own classification head.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lorafair.core.errors import LorafairError

logger = logging.getLogger(__name__)

DEFAULT_CS: tuple[float, ...] = tuple(10.0 ** np.arange(-4, 3))  # 1e-4 .. 1e2, inverse L2 strength
MAX_ITER = 5000  # lbfgs on standardised features converges well within this


@dataclass
class LinearProbe:
    """A linear head on RAW features: logits = features @ weight.T + bias."""

    weight: np.ndarray  # (num_labels, d)
    bias: np.ndarray  # (num_labels,)
    C: float  # inverse regularisation strength chosen by cross-validation
    cv_accuracy: float  # mean held-out-fold accuracy at that C

    def logits(self, features) -> np.ndarray:
        return np.asarray(features, dtype=np.float64) @ self.weight.T + self.bias

    def predict_proba(self, features) -> np.ndarray:
        return softmax(self.logits(features), axis=1)


def _pipeline(C: float, seed: int):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed))


def fit_linear_probe(
    features,
    labels,
    num_labels: int,
    seed: int = 0,
    cv: int = 5,
    Cs: tuple[float, ...] = DEFAULT_CS,
) -> LinearProbe:
    """Standardise + multinomial logistic regression, C picked by stratified k-fold CV accuracy.

    Folds = min(cv, size of the smallest class) so every fold holds every class; ties between Cs
    go to the smaller C (stronger regularisation). The scaler sits inside the CV pipeline, so fold
    statistics never leak. Raises LorafairError if a class is missing or has fewer than 2 examples.
    """
    x, y, class_counts = _checked_training_set(features, labels, num_labels)
    folds = int(min(cv, class_counts.min()))
    if folds < cv:
        logger.info(
            "linear probe: %d CV folds instead of %d (smallest class has %d examples)", folds, cv, class_counts.min()
        )
    search = GridSearchCV(
        _pipeline(1.0, seed),
        {"logisticregression__C": sorted(float(c) for c in Cs)},
        scoring="accuracy",
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        refit=True,
        n_jobs=1,
    )
    _fit_logging_convergence(search, x, y)
    weight, bias = _raw_feature_head(search.best_estimator_, num_labels)
    return LinearProbe(
        weight=weight,
        bias=bias,
        C=float(search.best_params_["logisticregression__C"]),
        cv_accuracy=float(search.best_score_),
    )


def _checked_training_set(features, labels, num_labels: int):
    """(x, y, examples per class); a class with fewer than 2 examples is the user's data: LorafairError."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(np.intp)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features (n, d) and labels (n,) expected, got {x.shape} and {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_labels):
        raise ValueError(f"label ids must lie in 0..{num_labels - 1}")
    class_counts = np.bincount(y, minlength=num_labels)
    if class_counts.min() < 2:
        missing = [int(c) for c in np.flatnonzero(class_counts < 2)]
        raise LorafairError(
            f"linear probe: class(es) {missing} have fewer than 2 training examples; "
            "cross-validation needs at least 2 per class"
        )
    return x, y, class_counts


def _fit_logging_convergence(search, x, y) -> None:
    """Fit; non-convergence is logged once (it would warn per fold and C), every other warning passes on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        search.fit(x, y)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        logger.warning("linear probe: logistic regression did not fully converge for some C")


def _raw_feature_head(pipeline, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """The scaler folded into the logistic regression: (weight (num_labels, d), bias) on raw features."""
    scaler = pipeline.named_steps["standardscaler"]
    clf = pipeline.named_steps["logisticregression"]
    # (x - mean) / scale @ coef.T + b  ==  x @ (coef / scale).T + (b - (coef / scale) @ mean)
    coef = clf.coef_ / scaler.scale_
    intercept = clf.intercept_ - coef @ scaler.mean_
    if num_labels == 2:
        # sklearn keeps one row (logit of class 1); softmax([0, s]) == [1 - sigmoid(s), sigmoid(s)]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef, intercept
