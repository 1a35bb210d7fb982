"""A lineage's versions once trained: downloading a checkpoint, deleting versions and lineages,
pins and the retention policy, and the sweep that finishes deletions a crash cut short."""
