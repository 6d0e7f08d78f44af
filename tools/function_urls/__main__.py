import sys

from tools.function_urls.server import main

sys.exit(main())
