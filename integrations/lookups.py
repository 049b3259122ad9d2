"""`field__any=[...]`: membership as `column = ANY(array)`, the list sent as one array parameter.

A page asks about a thousand records at once. `__in` spells each value as its own placeholder, so Django
compiles and psycopg rescans a statement a thousand placeholders long on every page; `__any` sends one
parameter however many values there are, and PostgreSQL plans it as it plans IN.
"""

from __future__ import annotations

from django.db.models import Field, ForeignObject, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False  # the right-hand side is a collection: each value is prepared by the field below

    def get_db_prep_lookup(self, value, connection):
        field = self.lhs.output_field
        return "%s", [[field.get_db_prep_value(v, connection, prepared=False) for v in value]]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        # Cast to the column's own type: an empty list has no element type, and text compares as varchar does.
        return f"{lhs} = ANY({rhs}::{self.lhs.output_field.db_type(connection)}[])", (*lhs_params, *rhs_params)


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # relations keep lookups of their own
