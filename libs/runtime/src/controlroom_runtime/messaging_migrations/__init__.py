"""The messaging branch: outbox and inbox migrations every service's schema includes.

A service's Alembic script directory lists these versions beside its own, so its schema has
two heads (its own and ``messaging``), each moved by its own migrations; a change to the
outbox or the inbox is one migration here, not one per service.
"""

from pathlib import Path

VERSIONS = Path(__file__).parent
