"""What the Kubernetes backend raises besides ``LaunchFailed`` (which the interface defines)."""

from __future__ import annotations

from controlroom_executor.backend import AttemptKey


class KubernetesBackendError(Exception):
    """Base of the Kubernetes backend's errors; carries the attempt it is about."""

    def __init__(self, key: AttemptKey, message: str) -> None:
        super().__init__(f"{key.name()}: {message}")
        self.key = key


class KubernetesUnavailable(KubernetesBackendError):
    """The Kubernetes API could not be reached for long enough to give up following an attempt."""


class AttemptStillRunning(KubernetesBackendError):
    """stop() gave up waiting for the attempt's Job and pod to be gone."""
