"""The contactless terminal: a sans-I/O kernel that drives one tap, its transports and host client."""
