"""``python -m attnlab``: the command line."""

from attnlab.cli.main import main

raise SystemExit(main())
