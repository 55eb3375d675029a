"""The ledger: its rules (the one way to change it), rates, users and counties."""
