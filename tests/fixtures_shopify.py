"""Pytest fixtures for the local Shopify test double (filled in by the double's module)."""
