"""Model components of the engine, one module per component."""
