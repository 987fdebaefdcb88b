"""``python -m webhook`` runs the ``imagegate`` command line."""

import sys

from webhook.cli import main

sys.exit(main())
