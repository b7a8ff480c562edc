"""The docks beside the images: worklist, findings, review and skipped files."""
