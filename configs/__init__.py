"""jaxcnn's recipes: one experiment per file, data only (configs/base.py and ml_collections)."""
