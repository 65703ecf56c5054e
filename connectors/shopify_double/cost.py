"""Calculated query cost, roughly as Shopify computes it.

Scalars and enums cost 0, objects 1, a connection ``2 + n × (cost of one node)`` where ``n``
is ``first``/``last`` (requested) or the number of nodes returned (actual), ``nodes(ids:)``
``n × (cost of one node)`` with ``n`` the ids asked (requested) or found (actual); a mutation root
field costs 10 plus the connections and nested objects below its payload's records.
The numbers come close to the captured ones (e.g. a ``customerCreate`` selecting ids and
scalars costs 10) without reproducing Shopify's per-field table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    value_from_ast_untyped,
)

MUTATION_COST = 10


def _is_connection(type_: Any) -> bool:
    named = get_named_type(type_)
    return named is not None and named.name.endswith("Connection")


def _fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> list[FieldNode]:
    out: list[FieldNode] = []
    if selection_set is None:
        return out
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            out.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            out.extend(_fields(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                out.extend(_fields(fragment.selection_set, fragments))
    return out


class CostCalculator:
    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any] | None,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.variables = dict(variables or {})

    def _arg(self, field: FieldNode, name: str) -> Any:
        for arg in field.arguments or ():
            if arg.name.value == name:
                return value_from_ast_untyped(arg.value, self.variables)
        return None

    def _root_type(self) -> GraphQLObjectType | None:
        if self.operation.operation == OperationType.MUTATION:
            return self.schema.mutation_type
        return self.schema.query_type

    def requested(self) -> int:
        return self._total(data=None, actual=False)

    def actual(self, data: Mapping[str, Any] | None) -> int:
        return self._total(data=data, actual=True)

    def _total(self, data: Mapping[str, Any] | None, actual: bool) -> int:
        root = self._root_type()
        if root is None:
            return 0
        mutation = self.operation.operation == OperationType.MUTATION
        total = 0
        for field in _fields(self.operation.selection_set, self.fragments):
            definition = root.fields.get(field.name.value)
            if definition is None:
                continue
            value = _pick(data, field) if actual else None
            if mutation:
                total += MUTATION_COST
                payload = get_named_type(definition.type)
                if isinstance(payload, GraphQLObjectType) and (value is not None or not actual):
                    # records in the payload are free; what they select is not
                    for child in _fields(field.selection_set, self.fragments):
                        child_def = payload.fields.get(child.name.value)
                        if child_def is None:
                            continue
                        child_value = _pick(value, child) if actual else None
                        if actual and child_value is None:
                            continue
                        total += self._selection_cost(child, child_def.type, child_value,
                                                      actual, free_object=True)
            else:
                total += self._field_cost(field, definition.type, value, actual)
        return total

    def _field_cost(self, field: FieldNode, type_: Any, value: Any, actual: bool) -> int:
        named = get_named_type(type_)
        if not isinstance(named, GraphQLObjectType) and field.selection_set is None:
            return 0  # scalar or enum
        if actual and value is None:
            return 0
        ids = self._arg(field, "ids")
        if isinstance(ids, list) and not isinstance(named, GraphQLObjectType):
            return self._nodes_cost(field, ids, value, actual)
        if _is_connection(type_):
            first = self._arg(field, "first") or self._arg(field, "last") or 0
            node_type = named.fields["nodes"].type if isinstance(named, GraphQLObjectType) \
                and "nodes" in named.fields else None
            node_cost = 1 + self._node_children_cost(field, node_type)
            if actual:
                count = _connection_size(value, field, self.fragments)
                return 2 + count * node_cost
            return 2 + int(first) * node_cost
        return self._selection_cost(field, type_, value, actual, free_object=False)

    def _selection_cost(
        self, field: FieldNode, type_: Any, value: Any, actual: bool, free_object: bool
    ) -> int:
        named = get_named_type(type_)
        if field.selection_set is None or not hasattr(named, "fields"):
            return 0
        if _is_connection(type_):
            return self._field_cost(field, type_, value, actual)
        is_list = isinstance(type_, GraphQLList) or (
            isinstance(type_, GraphQLNonNull) and isinstance(type_.of_type, GraphQLList)
        )
        total = 0 if free_object else 1
        items = value if (actual and is_list and isinstance(value, list)) else [value]
        for child in _fields(field.selection_set, self.fragments):
            child_def = named.fields.get(child.name.value)
            if child_def is None:
                continue
            best = 0
            for item in items[:1] if not actual else items or [None]:
                child_value = _pick(item, child) if actual else None
                best = max(best, self._field_cost(child, child_def.type, child_value, actual))
            total += best
        return total

    def _nodes_cost(self, field: FieldNode, ids: list[Any], value: Any, actual: bool) -> int:
        """``nodes(ids:)``: one node's cost per id asked (requested) or found (actual); a node
        costs 1 plus what the costliest of its type conditions selects."""
        per_node = 0
        for selection in field.selection_set.selections if field.selection_set else ():
            if not isinstance(selection, InlineFragmentNode) or selection.type_condition is None:
                continue
            kind = self.schema.get_type(selection.type_condition.name.value)
            if not isinstance(kind, GraphQLObjectType):
                continue
            per_node = max(per_node, self._requested_children_cost(selection.selection_set, kind))
        count = sum(1 for item in value if item) if actual and isinstance(value, list) else len(ids)
        return count * (1 + per_node)

    def _node_children_cost(self, connection_field: FieldNode, node_type: Any) -> int:
        named = get_named_type(node_type) if node_type is not None else None
        if not isinstance(named, GraphQLObjectType):
            return 0
        best = 0
        for part in _fields(connection_field.selection_set, self.fragments):
            if part.name.value == "nodes":
                node_field: FieldNode | None = part
            elif part.name.value == "edges":
                node_field = next((f for f in _fields(part.selection_set, self.fragments)
                                   if f.name.value == "node"), None)
            else:
                continue
            if node_field is None:
                continue
            best = max(best, self._requested_children_cost(node_field.selection_set, named))
        return best

    def _requested_children_cost(
        self, selection_set: SelectionSetNode | None, kind: GraphQLObjectType
    ) -> int:
        """The requested cost of what ``selection_set`` selects on one object of ``kind``."""
        cost = 0
        for child in _fields(selection_set, self.fragments):
            child_def = kind.fields.get(child.name.value)
            if child_def is not None:
                cost += self._field_cost(child, child_def.type, None, False)
        return cost


def _pick(data: Any, field: FieldNode) -> Any:
    if not isinstance(data, Mapping):
        return None
    key = field.alias.value if field.alias else field.name.value
    return data.get(key)


def _connection_size(
    value: Any, field: FieldNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    if not isinstance(value, Mapping):
        return 0
    size = 0
    for part in _fields(field.selection_set, fragments):
        items = _pick(value, part)
        if part.name.value in ("edges", "nodes") and isinstance(items, list):
            size = max(size, len(items))
    return size
