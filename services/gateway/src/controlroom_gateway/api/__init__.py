"""The REST API: one router per resource, and the FastAPI plumbing around them (dependencies,
problem+json errors, the OpenAPI document, body and rate limits, event streams). Routers parse
the request, call a use case and shape its answer; what happens lives in the packages beside."""
