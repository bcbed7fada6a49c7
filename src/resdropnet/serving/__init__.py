"""HTTP service and web page (FastAPI, uvicorn); needs the `serve` extra."""
