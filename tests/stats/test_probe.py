"""lorafair.stats.probe: the folded linear head must be the fitted sklearn pipeline, C must come from CV."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lorafair.core.errors import LorafairError
from lorafair.stats.probe import MAX_ITER, LinearProbe, cross_fit_folds, cross_fitted_probe, fit_linear_probe


def _blobs(seed, n, d, k, sep=1.0, scale_spread=True):
    """Gaussian classes; features on very different scales and offsets (so the scaler matters)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.normal(size=(k, d)) * sep
    x = centres[y] + rng.normal(size=(n, d))
    if scale_spread:
        x = x * np.logspace(-2, 2, d) + rng.normal(size=d) * 10
    return x, y


def _sklearn_pipeline(x, y, C, seed=0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed)).fit(x, y)


@pytest.mark.parametrize("k", [2, 3])
def test_folded_head_equals_sklearn_pipeline(k):
    x, y = _blobs(0, 240, 12, k, sep=0.6)
    x[:, 3] = 7.0  # a constant feature (zero variance) must not break the folding
    probe = fit_linear_probe(x, y, num_labels=k, seed=0, Cs=(0.01, 0.1, 1.0) if k == 2 else (1e-4, 1e-2, 1.0, 1e2))
    assert isinstance(probe, LinearProbe)
    assert probe.weight.shape == (k, 12) and probe.bias.shape == (k,)
    ref = _sklearn_pipeline(x, y, probe.C)
    x_new, _ = _blobs(1, 50, 12, k, sep=0.6)  # unseen features too, not only the training ones
    for feats in (x, x_new):
        np.testing.assert_allclose(probe.predict_proba(feats), ref.predict_proba(feats), rtol=0, atol=1e-8)
        assert (probe.logits(feats).argmax(axis=1) == ref.predict(feats)).all()


@pytest.mark.parametrize("k", [2, 3])
def test_a_probe_without_intercept_is_sklearns_and_has_zero_bias(k):
    """For a head without a bias (decoders' score): scaled, not centred, and no intercept, as sklearn fits it."""
    x, y = _blobs(2, 240, 12, k, sep=0.6)
    probe = fit_linear_probe(x, y, num_labels=k, seed=0, Cs=(0.01, 1.0), fit_intercept=False)
    np.testing.assert_array_equal(probe.bias, np.zeros(k))
    ref = make_pipeline(
        StandardScaler(with_mean=False), LogisticRegression(C=probe.C, max_iter=MAX_ITER, fit_intercept=False)
    ).fit(x, y)
    x_new, _ = _blobs(3, 50, 12, k, sep=0.6)
    for feats in (x, x_new):
        np.testing.assert_allclose(probe.predict_proba(feats), ref.predict_proba(feats), rtol=0, atol=1e-8)


def test_c_is_the_cross_validated_choice():
    # few examples, many noisy features: regularisation strength genuinely matters
    x, y = _blobs(2, 90, 40, 3, sep=0.35, scale_spread=False)
    Cs = (1e-3, 1e-2, 1e-1, 1.0)
    probe = fit_linear_probe(x, y, num_labels=3, seed=4, cv=4, Cs=Cs)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=4)
    mean_acc = []
    for C in Cs:
        accs = [
            (_sklearn_pipeline(x[tr], y[tr], C, seed=4).predict(x[te]) == y[te]).mean() for tr, te in folds.split(x, y)
        ]
        mean_acc.append(np.mean(accs))
    best = int(np.argmax(mean_acc))  # first maximum = smallest C among ties
    assert probe.C == Cs[best]
    assert probe.cv_accuracy == pytest.approx(mean_acc[best], abs=1e-12)
    assert len(set(np.round(mean_acc, 6))) > 1  # the grid was not degenerate


def test_separable_features_give_a_near_perfect_probe_and_a_wrong_head_does_not():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 8))
    direction = rng.normal(size=8)
    margin = x @ direction
    keep = np.abs(margin) > 0.5  # a clear gap: linearly separable
    x, y = x[keep], (margin[keep] > 0).astype(int)
    train, test = slice(0, len(y) // 2), slice(len(y) // 2, None)
    probe = fit_linear_probe(x[train], y[train], num_labels=2, seed=0, Cs=(0.01, 1.0, 100.0))
    acc = (probe.predict_proba(x[test]).argmax(axis=1) == y[test]).mean()
    assert acc >= 0.95
    assert probe.cv_accuracy >= 0.9
    flipped = LinearProbe(weight=-probe.weight, bias=-probe.bias, C=probe.C, cv_accuracy=probe.cv_accuracy)
    assert (flipped.predict_proba(x[test]).argmax(axis=1) == y[test]).mean() < 0.2
    random_head = LinearProbe(weight=rng.normal(size=(2, 8)), bias=np.zeros(2), C=1.0, cv_accuracy=0.0)
    assert (random_head.predict_proba(x[test]).argmax(axis=1) == y[test]).mean() < 0.95


def test_predict_proba_rows_are_a_distribution():
    x, y = _blobs(6, 60, 5, 3)
    p = fit_linear_probe(x, y, 3, Cs=(0.1, 1.0)).predict_proba(x)
    assert p.shape == (60, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def _cv_accuracy(x, y, folds, C=1.0, seed=0):
    """sklearn's own k-fold accuracy of the probe pipeline (warnings about small classes silenced)."""
    import warnings

    from sklearn.model_selection import cross_val_score

    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_val_score(
            pipeline, x, y, scoring="accuracy", cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        ).mean()


def test_small_classes_reduce_folds_and_singletons_are_a_user_error(caplog):
    x, y = _blobs(7, 40, 4, 2)
    y[:] = 0
    y[:3] = 1  # 3 members: 3 folds instead of 5, still works
    with caplog.at_level("INFO", logger="lorafair.stats.probe"):
        probe = fit_linear_probe(x, y, 2, cv=5, Cs=(1.0,))
    assert "3 CV folds instead of 5" in caplog.text
    # the CV score is that of 3 stratified folds, and on these data no other fold count gives the same score
    assert probe.cv_accuracy == pytest.approx(_cv_accuracy(x, y, 3), abs=1e-12)
    assert all(abs(probe.cv_accuracy - _cv_accuracy(x, y, k)) > 1e-6 for k in (2, 4, 5))
    y[1:3] = 0  # 1 member: cannot cross-validate
    with pytest.raises(LorafairError):
        fit_linear_probe(x, y, 2)
    with pytest.raises(LorafairError):  # a label id that never occurs in training
        fit_linear_probe(x, np.zeros(40, int) + (np.arange(40) % 2), 3)


# -- A1 cross-fitted on the evaluation set (no probe data) ------------------------------------------------------
def _nested_cross_val_proba(x, y, outer, Cs, seed=0, inner=5):
    """scikit-learn's own out-of-fold probabilities: the probe pipeline with its C chosen by inner stratified CV."""
    from sklearn.model_selection import GridSearchCV, cross_val_predict

    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER, random_state=seed))
    search = GridSearchCV(
        pipeline,
        {"logisticregression__C": sorted(Cs)},
        scoring="accuracy",
        cv=StratifiedKFold(n_splits=inner, shuffle=True, random_state=seed),
    )
    folds = StratifiedKFold(n_splits=outer, shuffle=True, random_state=seed)
    return cross_val_predict(search, x, y, cv=folds, method="predict_proba")


@pytest.mark.parametrize("k, Cs", [(2, (0.01, 0.1, 1.0)), (3, (1e-3, 1e-1, 10.0)), (2, (1.0,))])
def test_cross_fitted_probe_equals_sklearn_cross_val_predict(k, Cs):
    x, y = _blobs(11, 150, 10, k, sep=0.5)
    fitted = cross_fitted_probe(x, y, k, seed=3, Cs=Cs)
    assert fitted.folds == 5 and len(fitted.heads) == 5
    expected = _nested_cross_val_proba(x, y, 5, Cs, seed=3)
    np.testing.assert_allclose(fitted.predict_proba(), expected, rtol=0, atol=1e-8)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=3)
    for fold, (_, held) in enumerate(folds.split(x, y)):  # each example scored by the probe that never saw it
        assert (fitted.fold_of[held] == fold).all()


def test_cross_fitting_takes_fewer_folds_for_a_small_class_and_needs_three_per_class():
    x, y = _blobs(12, 60, 4, 2)
    y[:] = 0
    y[:4] = 1  # 4 members: 4 folds, each fold's training part keeps 3 of them (inner CV: 3 folds)
    assert cross_fit_folds(y, 2) == 4
    fitted = cross_fitted_probe(x, y, 2, Cs=(0.1, 1.0))
    assert fitted.folds == 4
    from sklearn.model_selection import GridSearchCV, cross_val_predict

    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER, random_state=0)),
        {"logisticregression__C": [0.1, 1.0]},
        scoring="accuracy",
        cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
    )
    expected = cross_val_predict(
        search, x, y, cv=StratifiedKFold(n_splits=4, shuffle=True, random_state=0), method="predict_proba"
    )
    np.testing.assert_allclose(fitted.predict_proba(), expected, rtol=0, atol=1e-8)
    y[2:4] = 0  # 2 members: a fold's training part would hold 1
    assert cross_fit_folds(y, 2) == 0
    with pytest.raises(LorafairError):
        cross_fitted_probe(x, y, 2)
