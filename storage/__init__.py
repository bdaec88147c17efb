"""Parquet shard store: schemas, versioned writes, manifests, readers."""
