import sys

from daprlab.cli import main

sys.exit(main())
