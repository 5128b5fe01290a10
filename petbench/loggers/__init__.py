"""Loggers that follow training through the ``epoch_finished`` and ``run_finished`` hooks."""
