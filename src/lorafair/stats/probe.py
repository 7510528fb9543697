"""Linear probe (variant A1): the best linear head a frozen backbone's features allow.

A1 answers "was the information already in the base features?": if a logistic-regression head on
frozen features closes most of the gap between A and B, LoRA mostly re-aimed the head rather than
changing the features. The probe is fitted on the probe-training split only (C by stratified CV
on that split), then the standardisation is folded into a plain linear head, so at evaluation it is
just `features @ weight.T + bias`, the same shape as the model's own classification head.

Without probe data (none recorded or given, too little beside the evaluation sample), `cross_fitted_probe` fits
A1 on the evaluation set itself by cross-fitting: every example is scored by a probe trained on the other folds.
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


def _pipeline(C: float, seed: int, fit_intercept: bool = True):
    # without an intercept (a head with no bias) the features are only scaled: centring would hide an intercept
    return make_pipeline(
        StandardScaler(with_mean=fit_intercept),
        LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed, fit_intercept=fit_intercept),
    )


def fit_linear_probe(
    features,
    labels,
    num_labels: int,
    seed: int = 0,
    cv: int = 5,
    Cs: tuple[float, ...] = DEFAULT_CS,
    fit_intercept: bool = True,
) -> LinearProbe:
    """Standardise + multinomial logistic regression, C picked by stratified k-fold CV accuracy.

    `fit_intercept=False` fits logits = features @ weight.T exactly (bias 0), for a head without a bias.

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
        _pipeline(1.0, seed, fit_intercept),
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


MIN_CROSS_FIT_CLASS = 3  # a fold's training part must keep 2 examples of every class for the inner CV


def cross_fit_folds(labels, num_labels: int, folds: int = 5) -> int:
    """Folds for cross-fitting: `folds`, or fewer when a class is small (one example per fold at least); 0 when a
    class has fewer than 3 examples (a fold's training part would hold fewer than 2 of it)."""
    counts = np.bincount(np.asarray(labels, dtype=np.intp), minlength=num_labels)
    smallest = int(counts.min()) if counts.size else 0
    return min(folds, smallest) if smallest >= MIN_CROSS_FIT_CLASS else 0


@dataclass
class CrossFittedProbe:
    """Out-of-fold A1: every example scored by a probe fitted on the other folds only."""

    logits: np.ndarray  # (n, num_labels), row i from the probe that did not see example i
    folds: int
    heads: list  # the LinearProbe of every fold, in fold order
    fold_of: np.ndarray  # (n,) the fold each example was held out in

    def predict_proba(self) -> np.ndarray:
        return softmax(self.logits, axis=1)


def cross_fitted_probe(
    features, labels, num_labels: int, seed: int = 0, folds: int = 5, Cs: tuple[float, ...] = DEFAULT_CS
) -> CrossFittedProbe:
    """A1 without separate probe data: stratified K folds (shuffled with `seed`, K = `cross_fit_folds`), each fold's
    probe fitted by `fit_linear_probe` (its own C by inner CV) on the other folds and applied to this fold.

    Equal to scikit-learn's cross_val_predict(GridSearchCV(pipeline, C grid, inner folds), cv=the same outer
    folds, method="predict_proba"). The probabilities are fair to A1 (no example is scored by a probe that saw it)
    though they come from K probes, each fitted on (K - 1) / K of the examples.
    """
    x, y, _ = _checked_training_set(features, labels, num_labels)
    k = cross_fit_folds(y, num_labels, folds)
    if k < 2:
        raise LorafairError(f"linear probe: cross-fitting needs at least {MIN_CROSS_FIT_CLASS} examples of every class")
    logits, fold_of, heads = np.empty((len(y), num_labels)), np.empty(len(y), dtype=np.intp), []
    outer = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (train, held) in enumerate(outer.split(x, y)):
        head = fit_linear_probe(x[train], y[train], num_labels, seed=seed, Cs=Cs)
        logits[held], fold_of[held] = head.logits(x[held]), fold
        heads.append(head)
    return CrossFittedProbe(logits, k, heads, fold_of)


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
    mean = scaler.mean_ if scaler.with_mean else np.zeros(coef.shape[1])  # not centred (no intercept): no shift
    intercept = np.broadcast_to(clf.intercept_, (coef.shape[0],)) - coef @ mean
    if num_labels == 2:
        # sklearn keeps one row (logit of class 1); softmax([0, s]) == [1 - sigmoid(s), sigmoid(s)]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef, intercept
