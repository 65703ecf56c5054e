"""custsync's connectors: one module per system, behind the Protocols of custsync.engine.ports."""
