"""“Upgrade all” as a worker's job: a task a client, counted once each, refusals kept, one rollout at a time."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from integrations.models import AuditEvent
from integrations.partner_templates.selectors import install_key
from integrations.partner_templates.services import TemplateRefused, rollout_client_upgrade, rollout_start
from integrations.partner_templates.workspace import template_installed_version
from tests.integrations.partner_templates_support import PARTNER_ADMIN, install_in, next_version, saved  # noqa: F401 -- fixtures

pytestmark = pytest.mark.django_db


def deployed_to_two(world, saved):
    """Tailspin runs v1, Wingtip is only offered it; v2 is saved."""
    from integrations.partner_templates.services import template_deploy

    admin = world.user(PARTNER_ADMIN)
    template_deploy(
        template=saved.template, version=saved, clients=[world.clients["tailspin"], world.clients["wingtip"]],
        actor=admin,
    )  # fmt: skip
    install_in(world.clients["tailspin"], "p-time-to-invoice", "admin@tailspin.localhost", world)
    return next_version(world, saved)


def test_every_client_is_moved_by_its_own_task_and_counted_once(world, saved):
    version_2 = deployed_to_two(world, saved)
    template = saved.template
    rollout = rollout_start(template=template, version=version_2, actor=world.user(PARTNER_ADMIN))
    assert (rollout.total, rollout.done, rollout.running) == (2, 0, True)
    deployments = list(template.deployments.values_list("pk", flat=True))

    rollout_client_upgrade(rollout_id=rollout.pk, deployment_id=deployments[0])
    rollout.refresh_from_db()
    assert (rollout.done, rollout.running) == (1, True)
    rollout_client_upgrade(rollout_id=rollout.pk, deployment_id=deployments[0])  # delivered twice
    rollout.refresh_from_db()
    assert rollout.done == 1

    rollout_client_upgrade(rollout_id=rollout.pk, deployment_id=deployments[1])
    rollout.refresh_from_db()
    assert (rollout.done, rollout.upgraded, rollout.refusals, rollout.running) == (2, 2, [], False)
    assert set(template.deployments.values_list("version__number", flat=True)) == {2}
    with tenant_context(world.clients["tailspin"]):
        assert template_installed_version(key=install_key(template)) == 2
        assert AuditEvent.objects.filter(action="template.upgraded").count() == 1


def test_a_second_rollout_waits_for_the_first_and_a_client_already_there_is_not_upgraded_again(world, saved):
    version_2 = deployed_to_two(world, saved)
    template, admin = saved.template, world.user(PARTNER_ADMIN)
    rollout = rollout_start(template=template, version=version_2, actor=admin)
    with pytest.raises(TemplateRefused, match=r"already being moved to v2 \(0 of 2 done\)"):
        rollout_start(template=template, version=version_2, actor=admin)
    for deployment in template.deployments.all():
        rollout_client_upgrade(rollout_id=rollout.pk, deployment_id=deployment.pk)
    again = rollout_start(template=template, version=version_2, actor=admin)
    for deployment in template.deployments.all():
        rollout_client_upgrade(rollout_id=again.pk, deployment_id=deployment.pk)
    again.refresh_from_db()
    assert (again.done, again.upgraded, again.running) == (2, 0, False)
    with tenant_context(world.clients["tailspin"]):
        assert AuditEvent.objects.filter(action="template.upgraded").count() == 1
