"""smcd_check.spec: the executable specification of SMC-D (pure, deterministic, no I/O)."""
