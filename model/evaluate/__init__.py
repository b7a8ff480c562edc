"""Measuring a model: metrics, held-out evaluation, the report and the speed benchmark."""
