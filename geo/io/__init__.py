"""Files in and out: readers, CRS guessing, boundary TXT, datums, ledger sheet, exports, load."""
