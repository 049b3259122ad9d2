"""A partner's custom domains: add, verify by a DNS TXT record, make primary, remove."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.models import (
    Partner,
    PartnerDomain,
    User,
)
from tenants.services.audit import partner_audit_record


@transaction.atomic
def domain_add(*, partner: Partner, domain: str, actor: User | None) -> PartnerDomain:
    """A custom domain for the partner's portal. It serves nothing until `domain_verify` succeeds."""
    added = PartnerDomain.objects.create(partner=partner, domain=domain.lower(), requires_verification=True)
    partner_audit_record(
        partner=partner,
        actor=actor,
        action="domain.added",
        target_type="domain",
        target_id=added.pk,
        summary=f"{added.domain} added; it serves once its DNS record is verified",
        after={"domain": added.domain},
    )
    return added


@dataclass(frozen=True)
class DomainCheck:
    verified: bool
    message: str


def _txt_lookup(name: str) -> list[str]:
    """The TXT strings at `name`, from the resolvers in settings.DOMAIN_VERIFY_NAMESERVERS or the system's."""
    import dns.resolver

    nameservers = list(getattr(settings, "DOMAIN_VERIFY_NAMESERVERS", []) or [])
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        hosts, ports = [], set()
        for entry in nameservers:
            host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            hosts.append(host)
            ports.add(int(port) if port else 53)
        resolver.nameservers = hosts
        resolver.port = ports.pop()
    resolver.lifetime = float(getattr(settings, "DOMAIN_VERIFY_TIMEOUT_SECONDS", 5))
    answer = resolver.resolve(name, "TXT", search=False)
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def _legacy_txt_record_matches(domain: PartnerDomain) -> bool:
    """A partner may have published the record under its former name before it was renamed: it still counts."""
    import dns.exception

    try:
        values = _txt_lookup(domain.legacy_txt_name)
    except (dns.exception.DNSException, OSError):
        return False
    return domain.legacy_txt_value in (value.strip() for value in values)


def txt_record_check(*, name: str, expected: str, success: str) -> DomainCheck:
    """Look up the TXT record at `name` now: verified when one of its strings is `expected`."""
    import dns.exception
    import dns.resolver

    try:
        values = _txt_lookup(name)
    except dns.resolver.NXDOMAIN:
        return DomainCheck(False, f"No DNS record exists at {name} yet. Create the TXT record, then check again.")
    except dns.resolver.NoAnswer:
        return DomainCheck(False, f"{name} exists but has no TXT record. Add the TXT record, then check again.")
    except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
        return DomainCheck(False, "The DNS lookup timed out. Try again in a few minutes.")
    except (dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration, dns.exception.DNSException, OSError):
        return DomainCheck(False, "No DNS server answered the lookup. Try again in a few minutes.")
    if expected in (value.strip() for value in values):
        return DomainCheck(True, success)
    found = ", ".join(value[:60] for value in values[:3]) or "an empty record"
    return DomainCheck(
        False, f"The TXT record at {name} holds {found}, not this domain's token. Copy the value shown here exactly."
    )


def domain_verify(*, domain: PartnerDomain, actor: User | None = None) -> DomainCheck:
    """Look up the domain's TXT record now and record the result; verified domains start serving."""
    check = txt_record_check(
        name=domain.txt_name,
        expected=domain.txt_value,
        success=f"Verified: the TXT record matches. The portal now answers on {domain.domain}.",
    )
    if not check.verified and _legacy_txt_record_matches(domain):
        check = DomainCheck(True, f"Verified: the TXT record matches. The portal now answers on {domain.domain}.")
    with transaction.atomic():
        domain.last_checked_at = timezone.now()
        domain.last_check_message = check.message[:300]
        update = ["last_checked_at", "last_check_message"]
        if check.verified and domain.verified_at is None:
            domain.verified_at = domain.last_checked_at
            update.append("verified_at")
            partner_audit_record(
                partner=domain.partner,
                actor=actor,
                action="domain.verified",
                target_type="domain",
                target_id=domain.pk,
                summary=f"{domain.domain} verified: the portal now answers on it",
                after={"domain": domain.domain},
            )
        domain.save(update_fields=update)
    return check


@transaction.atomic
def domain_remove(*, domain: PartnerDomain, actor: User | None) -> None:
    if domain.is_primary:
        raise ValueError("The primary domain is where emails link to; make another domain primary first.")
    partner_audit_record(
        partner=domain.partner,
        actor=actor,
        action="domain.removed",
        target_type="domain",
        target_id=domain.pk,
        summary=f"{domain.domain} removed; it no longer serves the portal",
        before={"domain": domain.domain, "verified": domain.verified_at is not None},
    )
    domain.delete()


@transaction.atomic
def domain_make_primary(*, domain: PartnerDomain, actor: User | None) -> PartnerDomain:
    """Emails and invitations link to the primary domain; only a serving domain can be primary."""
    if not domain.is_serving:
        raise ValueError("Verify the domain before making it primary.")
    previous = PartnerDomain.objects.filter(partner_id=domain.partner_id, is_primary=True).first()
    PartnerDomain.objects.filter(partner_id=domain.partner_id, is_primary=True).update(is_primary=False)
    domain.is_primary = True
    domain.save(update_fields=["is_primary"])
    if previous is None or previous.pk != domain.pk:
        partner_audit_record(
            partner=domain.partner,
            actor=actor,
            action="domain.made_primary",
            target_type="domain",
            target_id=domain.pk,
            summary=f"{domain.domain} is the primary domain: emails and invitations link to it",
            before={"primary": previous.domain if previous else None},
            after={"primary": domain.domain},
        )
    return domain
