"""Every GraphQL document the Shopify connector sends, in one place.

Each constant is a complete document for the Admin API version pinned in
:data:`DEFAULT_API_VERSION`; ``tests/test_shopify_documents.py`` validates all of
:data:`ALL_DOCUMENTS` (and the bulk inner documents) against Shopify's real schema with
graphql-core, so a typo or a field Shopify removed fails the test suite, not a sync run.

Documents are composed from shared selections with plain string concatenation (no GraphQL
fragments): bulk operations take the inner query/mutation as a string, and keeping one style
everywhere keeps them readable.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Final

#: The Admin API version custsync is written and tested against (configurable per shop).
DEFAULT_API_VERSION: Final = "2026-07"

# --------------------------------------------------------------------------------------------
# Selections
# --------------------------------------------------------------------------------------------

ADDRESS_FIELDS: Final = """
      id
      firstName
      lastName
      company
      address1
      address2
      city
      province
      provinceCode
      countryCodeV2
      zip
      phone"""

#: Scalars of a customer (addresses are selected separately: list, or connection in bulk).
CUSTOMER_SCALARS: Final = """
    id
    firstName
    lastName
    email
    phone
    state
    tags
    note
    updatedAt
    defaultAddress { id }"""

CUSTOMER_FIELDS: Final = (
    CUSTOMER_SCALARS
    + """
    addresses {"""
    + ADDRESS_FIELDS
    + """
    }"""
)

_BULK_OPERATION_FIELDS: Final = """
    id
    status
    type
    errorCode
    createdAt
    completedAt
    objectCount
    rootObjectCount
    fileSize
    url
    partialDataUrl
    query"""

# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------

CUSTOMERS_PAGE: Final = (
    """query CustomersPage($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {"""
    + CUSTOMER_FIELDS
    + """
    }
  }
}
"""
)

CUSTOMER_BY_ID: Final = (
    """query CustomerById($id: ID!) {
  customer(id: $id) {"""
    + CUSTOMER_FIELDS
    + """
  }
}
"""
)

#: Several customers by id in one request (Relay ``nodes``): Shopify takes up to 250 ids and
#: answers in the order asked, ``null`` for an id it does not have (deleted, merged away).
CUSTOMERS_BY_IDS: Final = (
    """query CustomersByIds($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Customer {"""
    + CUSTOMER_FIELDS
    + """
    }
  }
}
"""
)

#: Exact lookup by e-mail or phone; not subject to the search index's lag.
CUSTOMER_BY_IDENTIFIER: Final = (
    """query CustomerByIdentifier($identifier: CustomerIdentifierInput!) {
  customerByIdentifier(identifier: $identifier) {"""
    + CUSTOMER_FIELDS
    + """
  }
}
"""
)

#: Search (tokenised, lags behind writes): callers re-check every result exactly.
CUSTOMERS_SEARCH: Final = (
    """query CustomersSearch($query: String!, $first: Int!) {
  customers(first: $first, query: $query) {
    nodes {"""
    + CUSTOMER_FIELDS
    + """
    }
  }
}
"""
)

CUSTOMERS_COUNT: Final = """query CustomersCount($query: String, $limit: Int) {
  customersCount(query: $query, limit: $limit) { count precision }
}
"""

ORDER_BY_ID: Final = (
    """query OrderById($id: ID!) {
  order(id: $id) {
    id
    name
    email
    phone
    customer {"""
    + CUSTOMER_FIELDS
    + """
    }
    billingAddress {"""
    + ADDRESS_FIELDS
    + """
    }
    shippingAddress {"""
    + ADDRESS_FIELDS
    + """
    }
  }
}
"""
)

SHOP_SHIPPING_COUNTRIES: Final = """query ShopShippingCountries {
  shop { shipsToCountries }
}
"""

#: Shipping zones with their provinces (for ``countries init``); needs ``read_shipping``.
DELIVERY_ZONES: Final = """query DeliveryZones($first: Int!, $after: String) {
  deliveryProfiles(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      profileLocationGroups {
        locationGroupZones(first: 100) {
          nodes {
            zone {
              countries {
                code { countryCode restOfWorld }
                provinces { code name }
              }
            }
          }
        }
      }
    }
  }
}
"""

# --------------------------------------------------------------------------------------------
# Writes
# --------------------------------------------------------------------------------------------

CUSTOMER_CREATE: Final = (
    """mutation CustomerCreate($input: CustomerInput!) {
  customerCreate(input: $input) {
    customer {"""
    + CUSTOMER_FIELDS
    + """
    }
    userErrors { field message }
  }
}
"""
)

CUSTOMER_UPDATE: Final = (
    """mutation CustomerUpdate($input: CustomerInput!) {
  customerUpdate(input: $input) {
    customer {"""
    + CUSTOMER_FIELDS
    + """
    }
    userErrors { field message }
  }
}
"""
)

CUSTOMER_ADDRESS_CREATE: Final = (
    """mutation CustomerAddressCreate($customerId: ID!, $address: MailingAddressInput!) {
  customerAddressCreate(customerId: $customerId, address: $address, setAsDefault: true) {
    address {"""
    + ADDRESS_FIELDS
    + """
    }
    userErrors { field message }
  }
}
"""
)

CUSTOMER_ADDRESS_UPDATE: Final = (
    """mutation CustomerAddressUpdate(
  $customerId: ID!, $addressId: ID!, $address: MailingAddressInput!
) {
  customerAddressUpdate(
    customerId: $customerId, addressId: $addressId, address: $address, setAsDefault: true
  ) {
    address {"""
    + ADDRESS_FIELDS
    + """
    }
    userErrors { field message }
  }
}
"""
)

CUSTOMER_SEND_INVITE: Final = """mutation CustomerSendAccountInviteEmail($customerId: ID!) {
  customerSendAccountInviteEmail(customerId: $customerId) {
    customer { id state }
    userErrors { field message code }
  }
}
"""

# --------------------------------------------------------------------------------------------
# Bulk operations
# --------------------------------------------------------------------------------------------

STAGED_UPLOADS_CREATE: Final = """mutation StagedUploadsCreate($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets {
      url
      resourceUrl
      parameters { name value }
    }
    userErrors { field message }
  }
}
"""

BULK_RUN_QUERY: Final = (
    """mutation BulkOperationRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation {"""
    + _BULK_OPERATION_FIELDS
    + """
    }
    userErrors { field message code }
  }
}
"""
)

BULK_RUN_MUTATION: Final = (
    """mutation BulkOperationRunMutation($mutation: String!, $stagedUploadPath: String!) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $stagedUploadPath) {
    bulkOperation {"""
    + _BULK_OPERATION_FIELDS
    + """
    }
    userErrors { field message code }
  }
}
"""
)

BULK_OPERATION_BY_ID: Final = (
    """query BulkOperationById($id: ID!) {
  bulkOperation(id: $id) {"""
    + _BULK_OPERATION_FIELDS
    + """
  }
}
"""
)

CURRENT_BULK_OPERATION: Final = (
    """query CurrentBulkOperation($type: BulkOperationType!) {
  currentBulkOperation(type: $type) {"""
    + _BULK_OPERATION_FIELDS
    + """
  }
}
"""
)

#: The mutation a bulk export runs once per JSONL line (``{"input": {...}}``).
BULK_CUSTOMER_CREATE: Final = (
    """mutation CustomerCreate($input: CustomerInput!) {
  customerCreate(input: $input) {
    customer {"""
    + CUSTOMER_FIELDS
    + """
    }
    userErrors { field message }
  }
}
"""
)


#: The mutation a bulk update runs once per JSONL line (``{"input": {"id": ..., ...}}``):
#: the customer's own fields only (its address goes through the address mutations).
BULK_CUSTOMER_UPDATE: Final = CUSTOMER_UPDATE

#: The address part of a bulk update, once per JSONL line
#: (``{"customerId": ..., "addressId": ..., "address": {...}}``), run before
#: :data:`BULK_CUSTOMER_UPDATE` (whose answer then carries the customer's ``updatedAt``).
BULK_CUSTOMER_ADDRESS_UPDATE: Final = CUSTOMER_ADDRESS_UPDATE

def bulk_customers_query(search: str | None = None) -> str:
    """The inner query of a bulk customer export; ``search`` is a customers search string.

    Addresses come as a nested connection, so the JSONL result has one line per address with
    ``__parentId`` pointing at its customer (see :mod:`.bulk`).
    """
    arguments = f"(query: {json.dumps(search)})" if search else ""
    return (
        "{\n  customers"
        + arguments
        + " {\n    edges {\n      node {"
        + CUSTOMER_SCALARS
        + "\n        addressesV2 {\n          edges {\n            node {"
        + ADDRESS_FIELDS
        + "\n            }\n          }\n        }\n      }\n    }\n  }\n}\n"
    )


WEBHOOK_SUBSCRIPTIONS: Final = """query WebhookSubscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    nodes {
      id
      topic
      uri
      createdAt
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE: Final = """mutation WebhookSubscriptionCreate(
  $topic: WebhookSubscriptionTopic!, $subscription: WebhookSubscriptionInput!
) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {
    webhookSubscription {
      id
      topic
      uri
      createdAt
    }
    userErrors {
      field
      message
    }
  }
}
"""


#: Every document sent as a request body (name -> text), for schema validation in tests.
ALL_DOCUMENTS: Final = MappingProxyType(
    {
        "CustomersPage": CUSTOMERS_PAGE,
        "CustomerById": CUSTOMER_BY_ID,
        "CustomersByIds": CUSTOMERS_BY_IDS,
        "CustomerByIdentifier": CUSTOMER_BY_IDENTIFIER,
        "CustomersSearch": CUSTOMERS_SEARCH,
        "CustomersCount": CUSTOMERS_COUNT,
        "OrderById": ORDER_BY_ID,
        "ShopShippingCountries": SHOP_SHIPPING_COUNTRIES,
        "DeliveryZones": DELIVERY_ZONES,
        "CustomerCreate": CUSTOMER_CREATE,
        "CustomerUpdate": CUSTOMER_UPDATE,
        "CustomerAddressCreate": CUSTOMER_ADDRESS_CREATE,
        "CustomerAddressUpdate": CUSTOMER_ADDRESS_UPDATE,
        "CustomerSendAccountInviteEmail": CUSTOMER_SEND_INVITE,
        "StagedUploadsCreate": STAGED_UPLOADS_CREATE,
        "BulkOperationRunQuery": BULK_RUN_QUERY,
        "BulkOperationRunMutation": BULK_RUN_MUTATION,
        "BulkOperationById": BULK_OPERATION_BY_ID,
        "CurrentBulkOperation": CURRENT_BULK_OPERATION,
        "WebhookSubscriptions": WEBHOOK_SUBSCRIPTIONS,
        "WebhookSubscriptionCreate": WEBHOOK_SUBSCRIPTION_CREATE,
    }
)

#: Documents a bulk operation runs server-side (sent as a string argument, not a body).
BULK_INNER_DOCUMENTS: Final = MappingProxyType(
    {
        "bulk customers (full)": bulk_customers_query(None),
        "bulk customers (since)": bulk_customers_query("updated_at:>'2026-01-01T00:00:00Z'"),
        "bulk customerCreate": BULK_CUSTOMER_CREATE,
        "bulk customerUpdate": BULK_CUSTOMER_UPDATE,
        "bulk customerAddressUpdate": BULK_CUSTOMER_ADDRESS_UPDATE,
    }
)
