"""People: users (once for the whole platform), the roles memberships grant them, and invitations to a role."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models.clients import Client
from tenants.models.partners import Partner


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("Users need an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person, once for the whole platform. What they may reach comes from Memberships."""

    username = None
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    def __str__(self):
        return self.full_name or self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email

    @property
    def has_not_joined(self) -> bool:
        """Invited, and has neither chosen a password nor signed in (someone who signs in through single
        sign-on has no password, and has joined)."""
        return self.last_login is None and not self.has_usable_password()


class Role(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", "Platform admin"
    PARTNER_ADMIN = "partner_admin", "Partner admin"
    PARTNER_STAFF = "partner_staff", "Partner staff"
    CLIENT_ADMIN = "client_admin", "Client admin"
    CLIENT_FINANCE = "client_finance", "Client finance"
    CLIENT_VIEWER = "client_viewer", "Client viewer"


PARTNER_ROLES = {Role.PARTNER_ADMIN, Role.PARTNER_STAFF}
CLIENT_ROLES = {Role.CLIENT_ADMIN, Role.CLIENT_FINANCE, Role.CLIENT_VIEWER}


class Membership(models.Model):
    """A role for a user: on the platform (no scope), on a partner, or on one client workspace.

    Partner staff reach only the clients in `assigned_clients`; partner admins reach all
    of their partner's clients.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships")
    assigned_clients = models.ManyToManyField(Client, blank=True, related_name="assigned_staff")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="membership_scope_matches_role",
                condition=(
                    Q(role="platform_admin", partner__isnull=True, client__isnull=True)
                    | Q(role__in=["partner_admin", "partner_staff"], partner__isnull=False, client__isnull=True)
                    | Q(
                        role__in=["client_admin", "client_finance", "client_viewer"],
                        partner__isnull=True,
                        client__isnull=False,
                    )
                ),
            ),
            models.UniqueConstraint(
                fields=["user", "partner"], condition=Q(partner__isnull=False), name="one_partner_role"
            ),
            models.UniqueConstraint(
                fields=["user", "client"], condition=Q(client__isnull=False), name="one_client_role"
            ),
        ]

    def __str__(self):
        scope = self.client or self.partner or "platform"
        return f"{self.user} · {self.get_role_display()} · {scope}"


INVITATION_DAYS = 14


def invitation_expiry():
    return timezone.now() + timedelta(days=INVITATION_DAYS)


class Invitation(models.Model):
    """A role offered to someone who already has an account. Nothing is granted until they accept it
    through the link emailed to the address, signed in as the account that owns it: an address a
    person merely typed into their profile grants nothing.

    (A person new to the portal gets their membership at once, with a link to choose a password:
    nobody can sign in to it without that link either.)
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations")
    assigned_clients = models.ManyToManyField(Client, blank=True, related_name="+")
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=invitation_expiry)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                name="invitation_scope_matches_role",
                condition=(
                    Q(role__in=["partner_admin", "partner_staff"], partner__isnull=False, client__isnull=True)
                    | Q(
                        role__in=["client_admin", "client_finance", "client_viewer"],
                        partner__isnull=True,
                        client__isnull=False,
                    )
                ),
            ),
        ]

    def __str__(self):
        return f"{self.email} · {self.get_role_display()} · {self.client or self.partner}"

    @property
    def home_partner(self) -> Partner:
        """The partner whose host and brand the invitation comes from."""
        return self.client.partner if self.client_id else self.partner
