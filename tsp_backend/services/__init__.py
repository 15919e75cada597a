"""Flask-free business logic of the token service; tests call these directly.

Each service takes a SQLAlchemy :class:`~sqlalchemy.orm.Session` and plain values, raises
:mod:`tsp_backend.errors` exceptions, and never sees a request object.
"""
