"""Real-service helpers for the test suite: a private redis-server, a throwaway PostgreSQL
database, the stand-in provider, and the services as gunicorn processes."""
