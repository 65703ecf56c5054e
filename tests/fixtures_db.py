"""Pytest fixtures for SQL databases: SQLite files and the PostgreSQL server."""
