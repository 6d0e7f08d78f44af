import sys

from tools.image_tables.generate import main

sys.exit(main())
