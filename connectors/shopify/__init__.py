"""Shopify GraphQL Admin API connector."""
