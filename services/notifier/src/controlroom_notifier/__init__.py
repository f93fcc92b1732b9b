"""Notifier: calls clients back with signed webhooks, durably, with retries."""
