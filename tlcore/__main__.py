"""`python -m tlcore ...`: the command line (see tlcore.cli)."""

from tlcore.cli import main

raise SystemExit(main())
