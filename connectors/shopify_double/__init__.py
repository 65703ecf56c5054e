"""A local test double of the Shopify GraphQL Admin API (customers subset)."""
