"""The command line. ``main`` parses and dispatches; one module per verb group (``reads``:
get, status, history; ``edit``; ``rollout``; ``nodes``; ``sync``) that do not import each
other; ``common`` (exit codes, argument types, printing), ``client`` (the running reconciler's
API) and ``commits`` (changing git the GitOps way) serve them all."""
