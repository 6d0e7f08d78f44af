"""`make docs`: the READMEs' inputs/outputs tables from the .tf files (python -m tools.tf_docs)."""
