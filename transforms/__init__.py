"""Pure image and PDF functions on numpy arrays and bytes (no Beam, no torch)."""
