"""The kernel side: mfusepy operations and mount wiring.

mfusepy picks libfuse2 when it is installed unless told otherwise, and libfuse2
caps writes at 4 KiB and reads at 128 KiB; the choice is made at import time,
so it is pinned here, before any module of this package imports mfusepy.
"""

import os

os.environ["FUSE_LIBRARY_NAME"] = "fuse3"
