"""smcd_check.model: a concrete loopback-ism implementation (independent of the spec)."""
