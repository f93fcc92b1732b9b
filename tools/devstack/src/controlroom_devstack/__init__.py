"""Local stack: nats-server, Postgres and every service, for make up, tests and bench."""
