"""Evaluation: probabilities with test-time augmentation, metrics, plots and run reports."""
