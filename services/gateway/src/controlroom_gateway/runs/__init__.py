"""Reading and steering runs: get, list, count, cancel, push events, page and follow their
history live, their jobs, artifacts and sessions."""
