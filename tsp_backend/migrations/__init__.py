"""Alembic migrations of the service's schema (run by :func:`tsp_backend.db.upgrade`)."""
