"""The HTTP API: one blueprint per area (auth, devices, cards, terminals, dev, meta)."""
