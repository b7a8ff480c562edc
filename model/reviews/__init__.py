"""The readers' reviews: the append-only, hash-chained review log and the blinded-reading protocol it enforces."""
