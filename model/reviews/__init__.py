"""The readers' reviews: the append-only, hash-chained review store."""
