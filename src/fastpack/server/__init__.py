"""`fastpack serve`: the HTTP API of SPEC §6 (needs the `server` extra: FastAPI and uvicorn)."""
