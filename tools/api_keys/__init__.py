"""``python -m tools.api_keys``: create, list and revoke the functions' API keys.

The key format and the table's items come from functions/llm_app/auth/keys.py, the module the
functions verify keys with; this package only writes and reads them (`store`).
"""

import sys

from tools.paths import REPO_ROOT

# The functions' code is its own import root (`llm_app`), as in the zip and the tests.
if str(REPO_ROOT / "functions") not in sys.path:
    sys.path.append(str(REPO_ROOT / "functions"))
