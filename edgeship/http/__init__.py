"""The front's HTTP side: the monitoring API (monitor), the metrics it serves under Fluent
Bit's names (metrics) and its terminal client, edgeship top (top)."""
