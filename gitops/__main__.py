"""``python -m gitops`` runs the CLI."""

from gitops.cli.main import main

raise SystemExit(main())
