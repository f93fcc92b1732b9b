"""Lineage queries and management, answered by the lineage service; graphs rendered as text."""
