"""Reader transports: thin byte pipes (local, PC/SC, nfcpy, replay) behind one interface."""
