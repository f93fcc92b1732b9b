"""Plumbing shared by every Control Room service. Imported, never run."""
