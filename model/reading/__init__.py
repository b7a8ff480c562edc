"""Screening double reading: readers, per-breast reads, the reading protocol, worklists, and the shared store on SQLite or PostgreSQL."""
