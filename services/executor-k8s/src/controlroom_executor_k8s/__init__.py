"""executor-k8s: runs dispatched runs as Kubernetes batch/v1 Jobs."""
