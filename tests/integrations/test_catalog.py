"""The packaged templates as data: what a partner's saved template version stores must install the same way."""

import json

import pytest

from integrations.catalog import PARTNER_TEMPLATE_PREFIX, TEMPLATES, Template


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_a_template_survives_its_json_spec_unchanged(key):
    template = TEMPLATES[key]
    spec = json.loads(json.dumps(template.to_spec()))  # as a JSONField stores it
    again = Template.from_spec(
        spec, key=template.key, name=template.name, summary=template.summary, version=template.version
    )
    assert again == template


def test_no_packaged_template_key_can_be_taken_for_a_partners():
    assert not any(key.startswith(PARTNER_TEMPLATE_PREFIX) for key in TEMPLATES)
