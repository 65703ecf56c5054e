"""Every GraphQL document the Shopify connector can send is valid against Shopify's schema."""

from __future__ import annotations

from pathlib import Path

import graphql
import pytest
from custsync.connectors.shopify import documents as docs

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "shopify"
SDL = SHARED / f"admin-{docs.DEFAULT_API_VERSION}.schema.graphql"

ALL = {**docs.ALL_DOCUMENTS, **docs.BULK_INNER_DOCUMENTS}


@pytest.fixture(scope="session")
def admin_schema() -> graphql.GraphQLSchema:
    if not SDL.exists():
        pytest.skip(f"Shopify schema not found at {SDL}")
    return graphql.build_schema(SDL.read_text(encoding="utf-8"), assume_valid=True)


@pytest.mark.parametrize("name", sorted(ALL))
def test_document_is_valid_against_the_admin_schema(
    admin_schema: graphql.GraphQLSchema, name: str
) -> None:
    document = graphql.parse(ALL[name])
    errors = graphql.validate(admin_schema, document)
    assert not errors, f"{name}: " + "; ".join(e.message for e in errors)


@pytest.mark.parametrize("name", sorted(docs.ALL_DOCUMENTS))
def test_document_has_one_named_operation_matching_its_key(name: str) -> None:
    document = graphql.parse(docs.ALL_DOCUMENTS[name])
    operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    assert len(operations) == 1
    assert operations[0].name is not None and operations[0].name.value == name


def test_every_document_constant_is_listed() -> None:
    constants = {
        value
        for key, value in vars(docs).items()
        if key.isupper()
        and isinstance(value, str)
        and value.lstrip().startswith(("query", "mutation"))
    }
    listed = set(docs.ALL_DOCUMENTS.values()) | set(docs.BULK_INNER_DOCUMENTS.values())
    assert constants <= listed


def test_bulk_query_embeds_the_search_safely() -> None:
    text = docs.bulk_customers_query('email:"a\\"b@example.com"')
    graphql.parse(text)  # still one valid document
    assert "addressesV2" in text and "edges" in text


def test_bulk_inner_documents_fit_shopifys_limit() -> None:
    for text in docs.BULK_INNER_DOCUMENTS.values():
        assert len(text.encode()) < 65_535


def test_documents_are_valid_against_the_doubles_schema_too() -> None:
    """The local double serves a cut-out of the real schema: it must cover what we send."""
    from custsync.connectors import shopify_double

    path = Path(shopify_double.__file__).with_name("schema.graphql")
    if not path.exists():
        pytest.skip("the double's schema is not there yet")
    schema = graphql.build_schema(path.read_text(encoding="utf-8"))
    for name, text in ALL.items():
        errors = graphql.validate(schema, graphql.parse(text))
        assert not errors, f"{name}: " + "; ".join(e.message for e in errors)
