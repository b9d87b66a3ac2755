"""`python -m serving.soak`: the same as `ovserve soak`."""

import sys

from serving.soak.run import main

sys.exit(main())
