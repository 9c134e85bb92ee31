"""Configuration: the settings of one reconciler (``settings``), the node list from a file or
``--node`` specs (``nodes``), and durations as Go writes them (``durations``)."""
