"""`python -m serving.bench ...` is `ovserve bench ...`."""

import sys

from serving.bench.cli import main

sys.exit(main())
