"""executor-docker: runs dispatched runs and reports started, completed or failed."""
