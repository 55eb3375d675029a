"""The demo county: a deterministic generator and its files."""
