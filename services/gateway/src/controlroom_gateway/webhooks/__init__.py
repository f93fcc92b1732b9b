"""Tenant webhook endpoints and their deliveries, owned by the notifier."""
