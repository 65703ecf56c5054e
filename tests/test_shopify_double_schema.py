"""The double's SDL subset matches Shopify's real 2026-07 Admin schema, type for type."""

from __future__ import annotations

import functools
from pathlib import Path

import graphql
import pytest
from custsync.connectors.shopify_double import api
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
)

REAL_SDL = Path(__file__).resolve().parents[2] / "shared" / "shopify" / "admin-2026-07.schema.graphql"


@functools.lru_cache(maxsize=1)
def real_schema() -> graphql.GraphQLSchema:
    return graphql.build_schema(REAL_SDL.read_text(encoding="utf-8"), assume_valid=True)


@pytest.fixture(scope="module")
def real() -> graphql.GraphQLSchema:
    if not REAL_SDL.exists():
        pytest.skip(f"real Admin schema not found at {REAL_SDL}")
    return real_schema()


def test_every_type_and_field_exists_with_the_same_type(real: graphql.GraphQLSchema) -> None:
    subset = api.schema()
    problems: list[str] = []
    # the subset's root types have Shopify's names
    assert subset.query_type is not None and subset.query_type.name == real.query_type.name
    assert subset.mutation_type is not None
    assert subset.mutation_type.name == real.mutation_type.name  # type: ignore[union-attr]
    for name, type_ in subset.type_map.items():
        if name.startswith("__"):
            continue
        other = real.type_map.get(name)
        if other is None:
            problems.append(f"type {name} is not in the real schema")
            continue
        if type(other) is not type(type_):
            problems.append(f"{name}: {type(type_).__name__} here, {type(other).__name__} there")
            continue
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(other, GraphQLObjectType | GraphQLInterfaceType)
            for field_name, field in type_.fields.items():
                real_field = other.fields.get(field_name)
                if real_field is None:
                    problems.append(f"{name}.{field_name} is not in the real schema")
                    continue
                if str(field.type) != str(real_field.type):
                    problems.append(f"{name}.{field_name}: {field.type} here, "
                                    f"{real_field.type} there")
                for arg_name, arg in field.args.items():
                    real_arg = real_field.args.get(arg_name)
                    if real_arg is None or str(real_arg.type) != str(arg.type):
                        problems.append(f"{name}.{field_name}({arg_name}): differs")
                missing = [a for a, v in real_field.args.items()
                           if isinstance(v.type, graphql.GraphQLNonNull) and a not in field.args]
                if missing:
                    problems.append(f"{name}.{field_name}: required args {missing} missing")
            for interface in type_.interfaces:
                if interface.name not in {i.name for i in other.interfaces}:
                    problems.append(f"{name} implements {interface.name} only here")
        elif isinstance(type_, GraphQLInputObjectType):
            assert isinstance(other, GraphQLInputObjectType)
            for field_name, input_field in type_.fields.items():
                real_input = other.fields.get(field_name)
                if real_input is None or str(real_input.type) != str(input_field.type):
                    problems.append(f"input {name}.{field_name}: differs or missing")
            required = [f for f, v in other.fields.items()
                        if isinstance(v.type, graphql.GraphQLNonNull) and f not in type_.fields]
            if required:
                problems.append(f"input {name}: required fields {required} missing")
        elif isinstance(type_, GraphQLEnumType):
            assert isinstance(other, GraphQLEnumType)
            extra = set(type_.values) - set(other.values)
            if extra:
                problems.append(f"enum {name}: values {sorted(extra)} not in the real schema")
        else:
            assert isinstance(type_, GraphQLScalarType)
    assert problems == []


def test_subset_covers_what_the_connector_needs() -> None:
    subset = api.schema()
    query = subset.query_type
    mutation = subset.mutation_type
    assert query is not None and mutation is not None
    for name in ("customers", "customer", "customersCount", "node", "orders", "order", "shop",
                 "currentBulkOperation", "bulkOperation", "bulkOperations"):
        assert name in query.fields, name
    assert set(query.fields["customers"].args) >= {
        "first", "after", "last", "before", "query", "sortKey", "reverse"}
    for name in ("customerCreate", "customerUpdate", "customerSet", "customerDelete",
                 "customerSendAccountInviteEmail", "customerAddressCreate",
                 "customerAddressUpdate", "stagedUploadsCreate", "bulkOperationRunQuery",
                 "bulkOperationRunMutation", "bulkOperationCancel"):
        assert name in mutation.fields, name
    for type_name in ("Customer", "MailingAddress", "CustomerConnection", "CustomerEdge",
                      "PageInfo", "UserError", "CustomerSetUserError", "Order", "Shop",
                      "BulkOperation"):
        assert type_name in subset.type_map, type_name


def test_generator_reproduces_the_committed_subset(real: graphql.GraphQLSchema) -> None:
    from custsync.connectors.shopify_double.make_schema import build_subset

    committed = (Path(api.__file__).parent / "schema.graphql").read_text(encoding="utf-8")
    assert build_subset(real) == committed
