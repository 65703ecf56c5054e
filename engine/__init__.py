"""custsync's engine: load, validate, compile, enrich, evaluate, decide, plan, apply."""
