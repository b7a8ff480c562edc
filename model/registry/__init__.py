"""The site's model versions: the registry, the active model and the bundled demo model."""
