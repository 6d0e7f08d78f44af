"""``python -m tools.api_keys``: create, list and revoke the functions' API keys.

The key format and the table's items come from functions/llm_app/auth/keys.py, the module the
functions verify keys with; this package only writes and reads them (`store`).
"""
