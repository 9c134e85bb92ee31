"""Traffic: which pods serve each Service port (``endpoints``, pure), HAProxy's configuration
(``balancer``, pure), the Service proxy on this machine (``proxy``) and on nodes elsewhere
(``nodeproxy``)."""
