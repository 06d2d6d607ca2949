"""Chaos as a library: switching the failure modes (switches) and the scenarios the bench and
the chaos pipeline drive the system through (scenarios). `valerix chaos` is its command line."""
