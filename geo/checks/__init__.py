"""Parcel checks: codes, areas, overlaps, gaps, conflicts, arrears."""
