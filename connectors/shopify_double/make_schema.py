"""Regenerate ``schema.graphql`` (the double's subset of the Admin API) from the real SDL.

The subset is *cut out of* the real schema, so every type and field keeps Shopify's exact
name and type; ``tests/test_shopify_double_schema.py`` checks that this still holds. To add a
field the connector needs, list it in :data:`SUBSET` and run::

    python -m custsync.connectors.shopify_double.make_schema \\
        ../shared/shopify/admin-2026-07.schema.graphql connectors/shopify_double/schema.graphql

Enums and scalars a kept field uses are pulled in whole. Input types keep every field whose
type is in the subset (optional fields of other types are dropped); object types keep only
the listed fields, and optional arguments of types outside the subset are dropped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import graphql
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
)

_CONNECTION = ["edges", "nodes", "pageInfo"]
_EDGE = ["cursor", "node"]

#: type name -> kept fields (``None``: all fields, for input objects)
SUBSET: dict[str, list[str] | None] = {
    "QueryRoot": [
        "customers",
        "customer",
        "customerByIdentifier",
        "customersCount",
        "node",
        "nodes",
        "orders",
        "order",
        "shop",
        "deliveryProfiles",
        "currentBulkOperation",
        "bulkOperation",
        "bulkOperations",
        "webhookSubscriptions",
    ],
    "Mutation": [
        "customerCreate",
        "customerUpdate",
        "customerSet",
        "customerDelete",
        "customerSendAccountInviteEmail",
        "customerAddressCreate",
        "customerAddressUpdate",
        "customerAddressDelete",
        "customerUpdateDefaultAddress",
        "stagedUploadsCreate",
        "bulkOperationRunQuery",
        "bulkOperationRunMutation",
        "bulkOperationCancel",
        "webhookSubscriptionCreate",
        "webhookSubscriptionDelete",
    ],
    "Node": ["id"],
    "PageInfo": ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"],
    "Customer": [
        "id",
        "legacyResourceId",
        "firstName",
        "lastName",
        "displayName",
        "email",
        "phone",
        "locale",
        "note",
        "state",
        "tags",
        "taxExempt",
        "taxExemptions",
        "verifiedEmail",
        "validEmailAddress",
        "canDelete",
        "createdAt",
        "updatedAt",
        "numberOfOrders",
        "amountSpent",
        "defaultEmailAddress",
        "defaultPhoneNumber",
        "defaultAddress",
        "addresses",
        "addressesV2",
        "orders",
        "lastOrder",
        "metafield",
        "metafields",
    ],
    "CustomerConnection": _CONNECTION,
    "CustomerEdge": _EDGE,
    "CustomerEmailAddress": ["emailAddress", "validFormat", "marketingState"],
    "CustomerPhoneNumber": ["phoneNumber", "marketingState"],
    "MoneyV2": ["amount", "currencyCode"],
    "Count": ["count", "precision"],
    "MailingAddress": [
        "id",
        "firstName",
        "lastName",
        "name",
        "company",
        "address1",
        "address2",
        "city",
        "province",
        "provinceCode",
        "country",
        "countryCode",
        "countryCodeV2",
        "zip",
        "phone",
        "formatted",
        "formattedArea",
        "latitude",
        "longitude",
        "coordinatesValidated",
        "timeZone",
    ],
    "MailingAddressConnection": _CONNECTION,
    "MailingAddressEdge": _EDGE,
    "Metafield": ["id", "namespace", "key", "type", "value", "createdAt", "updatedAt"],
    "MetafieldConnection": _CONNECTION,
    "MetafieldEdge": _EDGE,
    "Order": [
        "id",
        "legacyResourceId",
        "name",
        "email",
        "phone",
        "createdAt",
        "updatedAt",
        "customer",
        "billingAddress",
        "shippingAddress",
    ],
    "OrderConnection": _CONNECTION,
    "OrderEdge": _EDGE,
    "Shop": [
        "id",
        "name",
        "email",
        "contactEmail",
        "myshopifyDomain",
        "currencyCode",
        "ianaTimezone",
        "shipsToCountries",
    ],
    # shipping zones, as far as ``custsync countries init`` reads them
    "DeliveryProfile": ["id", "name", "default", "profileLocationGroups"],
    "DeliveryProfileConnection": _CONNECTION,
    "DeliveryProfileEdge": _EDGE,
    "DeliveryProfileLocationGroup": ["locationGroupZones"],
    "DeliveryLocationGroupZoneConnection": _CONNECTION,
    "DeliveryLocationGroupZoneEdge": _EDGE,
    "DeliveryLocationGroupZone": ["zone"],
    "DeliveryZone": ["id", "name", "countries"],
    "DeliveryCountry": ["id", "name", "translatedName", "code", "provinces"],
    "DeliveryCountryCodeOrRestOfWorld": ["countryCode", "restOfWorld"],
    "DeliveryProvince": ["id", "name", "translatedName", "code"],
    "BulkOperation": [
        "id",
        "type",
        "status",
        "errorCode",
        "createdAt",
        "completedAt",
        "objectCount",
        "rootObjectCount",
        "fileSize",
        "url",
        "partialDataUrl",
        "query",
    ],
    "BulkOperationConnection": _CONNECTION,
    "BulkOperationEdge": _EDGE,
    "UserError": ["field", "message"],
    "CustomerSetUserError": ["field", "message", "code"],
    "CustomerSendAccountInviteEmailUserError": ["field", "message", "code"],
    "BulkOperationUserError": ["field", "message", "code"],
    "BulkMutationUserError": ["field", "message", "code"],
    "StagedMediaUploadTarget": ["url", "resourceUrl", "parameters"],
    "StagedUploadParameter": ["name", "value"],
    "WebhookSubscription": [
        "id",
        "topic",
        "uri",
        "format",
        "createdAt",
        "updatedAt",
        "includeFields",
        "filter",
        "name",
    ],
    "WebhookSubscriptionConnection": _CONNECTION,
    "WebhookSubscriptionEdge": _EDGE,
    "WebhookSubscriptionCreatePayload": ["userErrors", "webhookSubscription"],
    "WebhookSubscriptionDeletePayload": ["deletedWebhookSubscriptionId", "userErrors"],
    "WebhookSubscriptionInput": None,
    "CustomerCreatePayload": ["customer", "userErrors"],
    "CustomerUpdatePayload": ["customer", "userErrors"],
    "CustomerSetPayload": ["customer", "userErrors"],
    "CustomerDeletePayload": ["deletedCustomerId", "shop", "userErrors"],
    "CustomerSendAccountInviteEmailPayload": ["customer", "userErrors"],
    "CustomerAddressCreatePayload": ["address", "userErrors"],
    "CustomerAddressUpdatePayload": ["address", "userErrors"],
    "CustomerAddressDeletePayload": ["deletedAddressId", "userErrors"],
    "CustomerUpdateDefaultAddressPayload": ["customer", "userErrors"],
    "StagedUploadsCreatePayload": ["stagedTargets", "userErrors"],
    "BulkOperationRunQueryPayload": ["bulkOperation", "userErrors"],
    "BulkOperationRunMutationPayload": ["bulkOperation", "userErrors"],
    "BulkOperationCancelPayload": ["bulkOperation", "userErrors"],
    # input objects: all fields whose types are in the subset
    "CustomerInput": None,
    "CustomerSetInput": None,
    "CustomerSetIdentifiers": None,
    "CustomerIdentifierInput": None,
    "CustomerDeleteInput": None,
    "MailingAddressInput": None,
    "EmailInput": None,
    "StagedUploadInput": None,
}

_ROOT_NAMES = {"QueryRoot": "query", "Mutation": "mutation"}


def _named(type_: Any) -> GraphQLNamedType:
    named: GraphQLNamedType = graphql.get_named_type(type_)
    return named


def _auto(named: GraphQLNamedType) -> bool:
    return isinstance(named, GraphQLEnumType | GraphQLScalarType)


def _in_subset(named: GraphQLNamedType) -> bool:
    return named.name in SUBSET or _auto(named)


def _description(text: str | None, indent: str) -> str:
    if not text:
        return ""
    first = " ".join(text.strip().split("\n\n")[0].split())
    first = first.replace('"""', "'''")
    return f'{indent}"""{first}"""\n'


def build_subset(real: GraphQLSchema) -> str:
    """The subset SDL text, cut out of ``real``."""
    chunks: list[str] = []
    needed: set[str] = set()
    for name in sorted(SUBSET):
        type_ = real.type_map[name]
        kept = SUBSET[name]
        if isinstance(type_, GraphQLInputObjectType):
            lines = []
            for field_name, field in type_.fields.items():
                named = _named(field.type)
                if not _in_subset(named):
                    if isinstance(field.type, GraphQLNonNull):
                        raise SystemExit(f"{name}.{field_name}: required input type {named}")
                    continue
                needed.add(named.name)
                lines.append(f"  {field_name}: {field.type}")
            chunks.append(_description(type_.description, "") + f"input {name} {{\n"
                          + "\n".join(lines) + "\n}")
            continue
        if not isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            raise SystemExit(f"{name} is not an object, interface or input type")
        assert kept is not None
        lines = []
        for field_name in kept:
            field = type_.fields[field_name]
            named = _named(field.type)
            if not _in_subset(named):
                raise SystemExit(f"{name}.{field_name}: type {named} is not in the subset")
            needed.add(named.name)
            args = []
            for arg_name, arg in field.args.items():
                arg_named = _named(arg.type)
                if not _in_subset(arg_named):
                    if isinstance(arg.type, GraphQLNonNull):
                        raise SystemExit(f"{name}.{field_name}({arg_name}): {arg_named}")
                    continue
                needed.add(arg_named.name)
                default = ""
                default_ast = arg.ast_node.default_value if arg.ast_node else None
                if default_ast is not None:
                    default = f" = {graphql.print_ast(default_ast)}"
                args.append(f"{arg_name}: {arg.type}{default}")
            arg_text = f"({', '.join(args)})" if args else ""
            lines.append(_description(field.description, "  ")
                         + f"  {field_name}{arg_text}: {field.type}")
        interfaces = [i.name for i in getattr(type_, "interfaces", ()) if i.name in SUBSET]
        implements = f" implements {' & '.join(interfaces)}" if interfaces else ""
        keyword = "interface" if isinstance(type_, GraphQLInterfaceType) else "type"
        chunks.append(_description(type_.description, "") + f"{keyword} {name}{implements} {{\n"
                      + "\n".join(lines) + "\n}")
    for name in sorted(needed - set(SUBSET)):
        type_ = real.type_map[name]
        if isinstance(type_, GraphQLEnumType):
            values = "\n".join(f"  {value}" for value in type_.values)
            chunks.append(f"enum {name} {{\n{values}\n}}")
        elif isinstance(type_, GraphQLScalarType):
            if name not in graphql.specified_scalar_types:
                chunks.append(f"scalar {name}")
        elif isinstance(type_, GraphQLUnionType):  # pragma: no cover - none in the subset
            raise SystemExit(f"union {name} not supported")
    schema_block = "schema {\n" + "\n".join(
        f"  {op}: {name}" for name, op in _ROOT_NAMES.items()
    ) + "\n}"
    header = (
        "# The Shopify test double's subset of the Admin GraphQL API (2026-07).\n"
        "# Generated by connectors/shopify_double/make_schema.py from the real SDL: do not edit\n"
        "# by hand; every type and field here has the same name and type as in Shopify's schema.\n"
    )
    return header + "\n" + schema_block + "\n\n" + "\n\n".join(chunks) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: make_schema REAL_SDL OUTPUT", file=sys.stderr)
        return 64
    real = graphql.build_schema(Path(args[0]).read_text(encoding="utf-8"), assume_valid=True)
    text = build_subset(real)
    graphql.build_schema(text)  # the subset must be a valid schema on its own
    Path(args[1]).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
