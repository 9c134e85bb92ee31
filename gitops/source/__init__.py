"""Source stage: where desired state comes from (git) and what says "look again" (triggers)."""
