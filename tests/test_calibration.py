"""Temperature scaling finds the temperature that generated the labels, and lowers the calibration error; a paired
comparison of two models counts and tests the faces only one of them got right."""

import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from resdropnet.evaluation.calibration import fit_temperature, negative_log_likelihood


def overconfident_logits(true_temperature: float, faces: int = 20_000, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / true_temperature): confident by that factor too much."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(faces, 7, generator=generator) * 3
    labels = torch.multinomial(torch.softmax(logits / true_temperature, 1), 1, generator=generator).squeeze(1)
    return logits, labels


def test_the_fitted_temperature_is_the_one_that_drew_the_labels():
    for true_temperature in (0.7, 2.0):
        logits, labels = overconfident_logits(true_temperature)
        assert abs(fit_temperature(logits, labels) - true_temperature) < 0.1 * true_temperature


def test_scaling_lowers_calibration_error_and_nll_on_held_out_faces():
    fit_logits, fit_labels = overconfident_logits(2.0, seed=1)
    logits, labels = overconfident_logits(2.0, seed=2)
    temperature = fit_temperature(fit_logits, fit_labels)

    def ece(t):
        return float(multiclass_calibration_error(torch.softmax(logits / t, 1), labels, 7, n_bins=15))

    assert ece(temperature) < ece(1.0) / 3
    assert negative_log_likelihood(logits, labels, temperature) < negative_log_likelihood(logits, labels)
    assert torch.equal((logits / temperature).argmax(1), logits.argmax(1))


def test_a_paired_comparison_counts_the_faces_only_one_model_got_right_and_tests_them():
    from resdropnet.evaluation.metrics import paired_comparison

    candidate = [True] * 10 + [False] * 8 + [True, False]
    reference = [True] * 10 + [True] * 8 + [False, False]
    result = paired_comparison(candidate, reference)
    assert result == {"faces": 20, "candidate_correct": 11, "reference_correct": 18, "only_candidate": 1,
                      "only_reference": 8, "p_value": pytest.approx(2 * (1 + 9) / 2**9)}  # exact two-sided binomial
    assert paired_comparison(candidate, candidate)["p_value"] == 1.0
    with pytest.raises(ValueError, match="same faces"):
        paired_comparison(candidate, reference[:-1])
