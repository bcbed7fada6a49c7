"""Temperature scaling finds the temperature that generated the labels, and lowers the calibration error; a paired
comparison of two models counts and tests the faces only one of them got right, and compares the probability each
gives the true label."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
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


def test_a_paired_likelihood_finds_a_small_loss_on_every_face_that_accuracy_does_not_show():
    from resdropnet.evaluation.metrics import paired_comparison, paired_likelihood

    labels = torch.arange(40) % 7
    reference = torch.nn.functional.one_hot(labels, 7).double() * 3.0
    candidate = reference * 0.8  # the same predictions, a little less sure of every true label
    same_predictions = paired_comparison(candidate.argmax(1) == labels, reference.argmax(1) == labels)
    assert same_predictions["only_candidate"] == same_predictions["only_reference"] == 0

    result = paired_likelihood(candidate, reference, labels)
    assert result["faces"] == 40 and result["reference_higher"] == 40 and result["candidate_higher"] == 0
    assert result["difference"] == pytest.approx(result["candidate"] - result["reference"]) and result["difference"] < 0
    assert result["p_value"] < 1e-6
    assert paired_likelihood(reference, reference, labels)["p_value"] == 1.0
    # each model's own temperature: the candidate's logits sharpened back to the reference's are its equal
    assert paired_likelihood(candidate, reference, labels, candidate_temperature=0.8)["difference"] == pytest.approx(0)
    with pytest.raises(ValueError, match="40 faces"):
        paired_likelihood(candidate[:-1], reference, labels)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.floats(-8, 8), min_size=7, max_size=7),
                          st.lists(st.floats(-8, 8), min_size=7, max_size=7), st.integers(0, 6)), min_size=1, max_size=30))
def test_swapping_the_models_of_a_paired_likelihood_swaps_its_sides_and_keeps_its_p_value(faces):
    from resdropnet.evaluation.metrics import paired_likelihood

    candidate, reference, labels = (torch.tensor(column, dtype=torch.float64) for column in zip(*faces))
    there, back = paired_likelihood(candidate, reference, labels), paired_likelihood(reference, candidate, labels)
    assert back["difference"] == pytest.approx(-there["difference"], abs=1e-9)
    assert (back["candidate_higher"], back["reference_higher"]) == (there["reference_higher"], there["candidate_higher"])
    assert back["p_value"] == pytest.approx(there["p_value"]) and 0 <= there["p_value"] <= 1
