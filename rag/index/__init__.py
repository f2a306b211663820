"""What ingest produced, stored and indexed: the catalog, chunks, embedders, Chroma and the lexical index."""
