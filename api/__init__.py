"""titlemap.api — the ways in over HTTP: the FastAPI app, routers, pages; uses geo and maps."""
