"""A packaged function behind a local Function URL (`python -m tools.function_urls`)."""
