"""The subset of monday.com's GraphQL schema the sandbox serves, how a query's complexity is counted, and the shapes
monday answers errors in (which depend on the API-Version a call names)."""

from __future__ import annotations

import math
import re
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    build_schema,
    value_from_ast_untyped,
)

SDL = """
scalar Date
scalar JSON
scalar CompareValue

enum State { active archived deleted all }
enum BoardKind { public private share }
enum BoardsOrderBy { created_at used_at }
enum UserKind { all guests non_guests non_pending }
enum ItemsQueryOperator { and or }
enum ItemsOrderByDirection { asc desc }
enum ItemsQueryRuleOperator {
  any_of not_any_of is_empty is_not_empty greater_than greater_than_or_equals lower_than lower_than_or_equal
  between contains_text not_contains_text contains_terms starts_with ends_with within_the_next within_the_last
}
enum ColumnType {
  auto_number board_relation button checkbox color_picker country creation_log date dependency doc dropdown email
  file formula group hour integration item_assignees item_id last_updated link location long_text mirror name
  numbers people person phone progress rating status subtasks tags team text time_tracking timeline timezone
  unsupported vote week world_clock
}

input ItemsQueryRule {
  column_id: ID!
  compare_value: CompareValue!
  compare_attribute: String
  operator: ItemsQueryRuleOperator = any_of
}
input ItemsQueryOrderBy { column_id: String! direction: ItemsOrderByDirection = asc }
input ItemsQuery {
  ids: [ID!]
  rules: [ItemsQueryRule!]
  operator: ItemsQueryOperator = and
  order_by: [ItemsQueryOrderBy!]
}

type Complexity { before: Int! after: Int! query: Int! reset_in_x_seconds: Int! }
type Account { id: ID! name: String! slug: String! }
type User {
  id: ID!
  name: String!
  email: String!
  enabled: Boolean!
  is_guest: Boolean
  is_view_only: Boolean
  account: Account!
}
type Tag { id: ID! name: String! }
type Group { id: ID! title: String! }
type Workspace { id: ID name: String! }
type Column { id: ID! title: String! type: ColumnType! settings_str: String! }
type ItemsResponse { cursor: String items: [Item!]! }
type Board {
  id: ID!
  name: String!
  state: State!
  board_kind: BoardKind!
  description: String
  permissions: String!
  updated_at: Date
  items_count: Int
  workspace: Workspace
  tags: [Tag]
  groups(ids: [String]): [Group]
  columns(ids: [String], types: [ColumnType!]): [Column]
  items_page(limit: Int! = 25, cursor: String, query_params: ItemsQuery): ItemsResponse!
}
type Item {
  id: ID!
  name: String!
  state: State
  created_at: Date
  updated_at: Date
  board: Board
  group: Group
  creator: User
  creator_id: String!
  column_values(ids: [String!], types: [ColumnType!]): [ColumnValue!]!
  subitems: [Item]
  parent_item: Item
}

interface ColumnValue { id: ID! column: Column! text: String type: ColumnType! value: JSON }
type TextValue implements ColumnValue { id: ID! column: Column! text: String type: ColumnType! value: JSON }
type StatusValue implements ColumnValue {
  id: ID! column: Column! text: String type: ColumnType! value: JSON label: String index: Int is_done: Boolean
}
type PeopleEntity { id: ID! kind: String }
type PeopleValue implements ColumnValue {
  id: ID! column: Column! text: String type: ColumnType! value: JSON persons_and_teams: [PeopleEntity!]
}
type TimeTrackingHistoryItem {
  id: ID!
  status: String!
  started_at: Date
  ended_at: Date
  started_user_id: ID
  ended_user_id: ID
  created_at: Date!
  updated_at: Date
  manually_entered_start_date: Boolean!
  manually_entered_start_time: Boolean!
  manually_entered_end_date: Boolean!
  manually_entered_end_time: Boolean!
}
type TimeTrackingValue implements ColumnValue {
  id: ID! column: Column! text: String type: ColumnType! value: JSON
  duration: Int running: Boolean started_at: Date updated_at: Date history: [TimeTrackingHistoryItem!]!
}
type MirrorValue implements ColumnValue {
  id: ID! column: Column! text: String type: ColumnType! value: JSON display_value: String!
}
type BoardRelationValue implements ColumnValue {
  id: ID! column: Column! text: String type: ColumnType! value: JSON display_value: String!
}
type DependencyValue implements ColumnValue {
  id: ID! column: Column! text: String type: ColumnType! value: JSON display_value: String!
}

type Query {
  me: User
  account: Account
  complexity: Complexity
  boards(ids: [ID!], limit: Int, page: Int, state: State = active, board_kind: BoardKind, order_by: BoardsOrderBy,
         workspace_ids: [ID]): [Board]
  items(ids: [ID!], limit: Int = 25, page: Int = 1): [Item]
  next_items_page(limit: Int! = 25, cursor: String!): ItemsResponse!
  users(ids: [ID!], emails: [String], kind: UserKind, limit: Int, page: Int): [User]
}
"""

SCHEMA = build_schema(SDL)
SCHEMA.get_type("ColumnValue").resolve_type = lambda value, _info, _type: value["__typename"]

ITEMS_PAGE_MAX = 500  # items_page and next_items_page
QUERY_MAX = 5_000_000  # complexity points a single query may cost
BUDGET_PER_MINUTE = 10_000_000  # a personal token's reads a minute on a paid plan
# What a list field is counted as holding when no limit says (see the client's assumptions: monday does not publish
# its formula, only that nested lists multiply).
LIST_SIZES = {"boards": 25, "items": 25, "users": 25, "items_page": 25, "next_items_page": 25, "column_values": 10,
              "history": 10, "groups": 10, "columns": 10, "subitems": 10, "tags": 10}  # fmt: skip
LEGACY_BEFORE = "2025-01"  # API versions before this one answer errors in the older, non-GraphQL shape


class MondayError(Exception):
    """An application-level error: answered inside HTTP 200, in the `errors` array."""

    def __init__(self, message: str, code: str, status_code: int = 200, error_data: dict | None = None):
        super().__init__(message)
        self.message, self.code = message, code
        # graphql-core copies `extensions` from an error a resolver raises into the error it reports.
        self.extensions = {"code": code, "status_code": status_code, "error_data": error_data or {}}


def legacy(version: str) -> bool:
    return version < LEGACY_BEFORE


def complexity_exhausted(version: str, *, cost: int, left: int, limit: int, reset_in: int) -> dict[str, Any]:
    """The body of a call refused because the minute's complexity budget is spent, as the version names it."""
    if legacy(version):
        message = (
            f"Complexity budget exhausted, query cost {cost} budget remaining {left} out of {limit} "
            f"reset in {reset_in} seconds"
        )
        return {"error_code": "ComplexityException", "status_code": 429, "error_message": message,
                "error_data": {}, "errors": [message]}  # fmt: skip
    extensions: dict[str, Any] = {"code": "COMPLEXITY_BUDGET_EXHAUSTED", "retry_in_seconds": reset_in}
    if version < "2025-07":
        extensions.update(complexity=cost, complexity_budget_left=left, complexity_budget_limit=limit, status_code=429)
    return {"errors": [{"message": "Complexity budget exhausted", "extensions": extensions}]}


def parse_error(source: str, error: GraphQLError) -> dict[str, Any]:
    """A syntax error as monday words it: the token it stopped on and where."""
    line, column = (error.locations[0].line, error.locations[0].column) if error.locations else (1, 1)
    position = error.positions[0] if error.positions else len(source)
    rest = source[position:].lstrip()
    token = re.match(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\"[^\"]*\"|\S", rest)
    shown = f'"{token.group(0)}"' if token else "end of query"
    message = f"Parse error on {shown} at [{line}, {column}]"
    return {"message": message, "locations": [{"line": line, "column": column}],
            "extensions": {"code": "PARSING_ERROR", "status_code": 200}}  # fmt: skip


_UNDEFINED_FIELD = re.compile(r"Cannot query field '(\w+)' on type '(\w+)'\.")


def validation_error(error: GraphQLError) -> dict[str, Any]:
    """A query that does not fit the schema, worded as monday's server words the common case (an unknown field)."""
    formatted = dict(error.formatted)
    found = _UNDEFINED_FIELD.match(error.message)
    if found:
        formatted["message"] = f"Field '{found.group(1)}' doesn't exist on type '{found.group(2)}'"
        formatted["extensions"] = {"code": "undefinedField", "typeName": found.group(2), "fieldName": found.group(1)}
    else:
        formatted["extensions"] = {"code": "GRAPHQL_VALIDATION_FAILED"}
    return formatted


def query_cost(document, operation: OperationDefinitionNode, variables: dict[str, Any]) -> int:
    """Complexity points: one per field, multiplied by the size of every list it sits in."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def argument(field: FieldNode, name: str) -> Any:
        for arg in field.arguments or ():
            if arg.name.value == name:
                return value_from_ast_untyped(arg.value, variables)
        return None

    def walk(selection_set, multiplier: int, parent: str = "") -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, InlineFragmentNode):
                total += walk(selection.selection_set, multiplier, parent)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                total += walk(fragment.selection_set, multiplier, parent) if fragment else 0
            elif isinstance(selection, FieldNode):
                name = selection.name.value
                if name in ("complexity", "__typename"):
                    continue
                total += multiplier
                if selection.selection_set:
                    # A page's items are as many as the page's limit, already counted on the page.
                    size = 1 if parent in ("items_page", "next_items_page") else LIST_SIZES.get(name, 1)
                    limit, ids = argument(selection, "limit"), argument(selection, "ids")
                    if isinstance(limit, int) and limit > 0:
                        size = limit
                    elif ids is not None and name in ("boards", "items", "users"):
                        size = max(1, len(ids)) if isinstance(ids, list) else 1  # one id stands for a list of one
                    total += walk(selection.selection_set, multiplier * size, name)
        return total

    return walk(operation.selection_set, 1)


def reset_seconds(window_start: float, window: float, now: float) -> int:
    return max(1, math.ceil(window_start + window - now))
