__source_hash__: str
