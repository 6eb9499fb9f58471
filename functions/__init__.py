"""Growthlens serverless layer: FastAPI routers, Mangum handlers, storage, CLI."""
