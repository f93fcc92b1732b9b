"""The executor runtime both executors share."""
