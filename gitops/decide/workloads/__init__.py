"""One planner a workload kind, behind one small interface (``base.Planner``): Deployment
(``deployment``, its rolling step and progress verdicts in ``rollout``) is the first."""
