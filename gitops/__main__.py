"""``python -m gitops`` runs the CLI."""

from gitops.cli import main

raise SystemExit(main())
