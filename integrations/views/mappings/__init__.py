"""The mapping editor (rules, a live sample record, the mapped record previewed as you type) and value maps."""

from integrations.views.mappings.editor import (
    mapping_editor,
    mapping_match_keys,
    mapping_preview,
    mapping_preview_draft,
    mapping_rule_delete,
    mapping_rule_form,
    mapping_rule_row,
    mapping_rule_save,
    mapping_sample_refresh,
)
from integrations.views.mappings.value_maps import (
    value_map_detail,
    value_map_entry_add,
    value_map_entry_delete,
    value_map_list,
)

__all__ = [
    "mapping_editor",
    "mapping_match_keys",
    "mapping_preview",
    "mapping_preview_draft",
    "mapping_rule_delete",
    "mapping_rule_form",
    "mapping_rule_row",
    "mapping_rule_save",
    "mapping_sample_refresh",
    "value_map_detail",
    "value_map_entry_add",
    "value_map_entry_delete",
    "value_map_list",
]
