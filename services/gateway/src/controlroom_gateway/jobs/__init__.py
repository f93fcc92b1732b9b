"""Submitting and validating jobs: the checks a job must pass, the pre-flight report, and
queueing its run (group commit, Idempotency-Key)."""
