"""Retrain jobs run in a child process, their estimate and the safety gate before a new model is used."""
