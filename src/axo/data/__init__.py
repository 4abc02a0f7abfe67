"""Data pipeline: sources -> format -> tokens + labels -> cache. See `prepare.prepare`."""
