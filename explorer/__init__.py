"""smcd_check.explorer: state-space exploration over the spec and implementations."""
