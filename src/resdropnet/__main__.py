import sys

from resdropnet.cli import main

sys.exit(main())
