"""titlemap.api — the FastAPI app and the command line; uses geo and maps."""
