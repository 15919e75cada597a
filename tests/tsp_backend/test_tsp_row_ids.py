"""Ids no row can have answer 404 problems, never a database overflow (a 500)."""

from __future__ import annotations

import pytest

from tests.tsp_backend.tsp_helpers import Wallet
from tsp_backend.models import MAX_ROW_ID


@pytest.mark.parametrize("row_id", [MAX_ROW_ID + 1, 2**63, 10**30])
@pytest.mark.parametrize("path", ["/api/cards/{}", "/api/devices/{}", "/api/transactions/{}"])
def test_ids_beyond_any_row_are_404(wallet: Wallet, path: str, row_id: int) -> None:
    """A card, device or transaction id past the integer column's range is not found."""
    response = wallet.get(path.format(row_id))
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
