import sys

from sc_chains.cli import main

sys.exit(main())
