"""Evaluation: geometry and image metrics against ground truth."""
