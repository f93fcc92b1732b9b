"""Scheduler: the authoritative run state machine; queues runs and dispatches them."""
