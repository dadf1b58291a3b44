"""Planning: board models, the cost model, fusion groups and block sizes (the scheduler)."""
