"""The built-in conformance suite (filled by the pytest-plugin issue)."""
