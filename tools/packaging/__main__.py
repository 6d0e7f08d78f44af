import sys

from tools.packaging.build import main

sys.exit(main())
