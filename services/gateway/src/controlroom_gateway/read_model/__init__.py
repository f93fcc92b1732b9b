"""The read model: its tables, the projection of run events into them, run history, and
retention."""
