"""``controlroom``: the Control Room command line (issue [8]); a client of the public REST API."""

__version__ = "0.1.0"
