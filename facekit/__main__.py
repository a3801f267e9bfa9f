import sys

from facekit.cli.main import main

sys.exit(main())
