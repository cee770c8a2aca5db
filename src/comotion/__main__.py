import sys

from comotion.cli import main

sys.exit(main())
