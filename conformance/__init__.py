"""smcd_check.conformance: run the spec's cases against any implementation via an adapter."""
