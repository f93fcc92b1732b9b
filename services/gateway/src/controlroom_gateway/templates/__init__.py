"""Job templates (saved, versioned jobs) and running them, by hand or on a schedule."""
