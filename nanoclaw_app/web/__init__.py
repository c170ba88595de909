"""The Litestar app served in-process by uvicorn."""
