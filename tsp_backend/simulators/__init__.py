"""HTTP faces of the simulated outside world (the logic is in :mod:`tsp_backend.services`)."""
