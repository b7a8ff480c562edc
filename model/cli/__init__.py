"""The ``bcir`` command line: one module per command group."""
