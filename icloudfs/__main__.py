"""``python -m icloudfs`` is the ``icloudfs`` command."""

import sys

from icloudfs.cli import main

sys.exit(main())
