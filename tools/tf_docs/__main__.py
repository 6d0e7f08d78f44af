"""``make docs``: write (``--write``) or check (``--check``) the READMEs' terraform-docs blocks."""

import sys

from tools.tf_docs.render import main

sys.exit(main())
