"""``python -m host.cli`` is the ``blockfuse`` command."""
import sys

from host.cli.main import main

sys.exit(main())
