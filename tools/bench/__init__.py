"""`make bench`: what the built artifacts cost at run time (`python -m tools.bench`)."""
