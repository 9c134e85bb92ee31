"""Act: the two stages that touch the nodes. ``observe`` reads what runs (one list call a
node) into a ``LiveState``; ``apply`` carries out a ``Plan`` through the node adapters and
decides nothing."""
