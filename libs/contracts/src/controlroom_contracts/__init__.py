"""Control Room contracts: the REST bodies, events and commands every service shares."""
