"""Transactions on the embedded SQLite default: real threads on a real database file."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, column, select, table, update

from tsp_backend.db import make_engine, make_sessionmaker

BOTH_READ_WAIT_S = 1.0
"""How long a thread waits for the other to have read too; with IMMEDIATE the other cannot."""

COUNTER = table("counter", column("id"), column("n"))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """A SQLite file with one counter row at 0."""
    engine = make_engine(f"sqlite:///{tmp_path / 'tail.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        connection.exec_driver_sql("INSERT INTO counter (id, n) VALUES (1, 0)")
    yield engine
    engine.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(COUNTER.c.n)).scalar_one())


def test_two_threads_that_lock_read_then_write_both_commit_without_losing_an_update(engine: Engine) -> None:
    """Two threads each read the counter FOR UPDATE, then write it +1: both commit, and n == 2."""
    sessions = make_sessionmaker(engine)
    both_read = threading.Barrier(2, timeout=BOTH_READ_WAIT_S)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            with sessions() as session, session.begin():
                n = session.execute(select(COUNTER.c.n).with_for_update()).scalar_one()
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_read.wait()
                session.execute(update(COUNTER).where(COUNTER.c.id == 1).values(n=n + 1))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(engine) == 2


def test_a_read_goes_on_beside_an_open_writer(engine: Engine) -> None:
    """A transaction that has only read holds no lock: it reads the committed state beside a writer."""
    with engine.connect() as writer, writer.begin():
        writer.execute(update(COUNTER).values(n=5))
        with engine.connect() as reader, reader.begin():
            assert reader.execute(select(COUNTER.c.n)).scalar_one() == 0
    assert _count(engine) == 5


def test_a_thread_that_has_read_in_one_session_writes_in_another(engine: Engine) -> None:
    """A session that has read does not make the same thread's next session wait for the write lock."""
    sessions = make_sessionmaker(engine)
    with sessions() as outer:
        assert outer.execute(select(COUNTER.c.n)).scalar_one() == 0
        with sessions() as inner, inner.begin():
            inner.execute(update(COUNTER).values(n=3))
        outer.execute(update(COUNTER).values(n=4))
        outer.commit()
    assert _count(engine) == 4


def test_autocommit_connections_commit_each_statement_and_leave_transactions_intact(engine: Engine) -> None:
    """AUTOCOMMIT begins nothing; the pooled connection then keeps its transactions whole."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(update(COUNTER).values(n=7))
    assert _count(engine) == 7
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        session.execute(update(COUNTER).values(n=8))
        assert session.execute(select(COUNTER.c.n)).scalar_one() == 8
        session.rollback()
    assert _count(engine) == 7


def test_a_savepoint_rolls_back_alone(engine: Engine) -> None:
    """``begin_nested`` is a real SAVEPOINT: its rollback keeps the outer transaction's writes."""
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        session.execute(update(COUNTER).values(n=1))
        nested = session.begin_nested()
        session.execute(update(COUNTER).values(n=99))
        nested.rollback()
    assert _count(engine) == 1
