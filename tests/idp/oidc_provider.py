"""An OpenID Connect provider for the tests: django-oauth-toolkit's, as a tiny Django project of its own
(SQLite, RS256 ID tokens, a login page), in a separate process. People sign in with a password and carry
their IdP groups in a "groups" claim, as Entra ID and Okta send them.

    python -m tests.idp.oidc_provider serve --data DIR --port PORT
    python -m tests.idp.oidc_provider person --data DIR --email E --password P --name N --groups A,B
    python -m tests.idp.oidc_provider client --data DIR --client-id ID --secret S --redirect-uri URI
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def configure(data: Path, port: int = 0) -> None:
    import django
    from django.conf import settings

    data.mkdir(parents=True, exist_ok=True)
    key_file = data / "rsa.pem"
    if not key_file.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-identity-provider-only",  # noqa: S106 - a throwaway IdP on loopback
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF="tests.idp.oidc_urls",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(data / "idp.sqlite3")}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [HERE / "templates"],
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
            }
        ],
        LOGIN_URL="/login/",
        SESSION_COOKIE_NAME="idp_session",
        CSRF_COOKIE_NAME="idp_csrftoken",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        OAUTH2_PROVIDER={
            "OIDC_ENABLED": True,
            "OIDC_RSA_PRIVATE_KEY": key_file.read_text(),
            "OIDC_ISS_ENDPOINT": f"http://127.0.0.1:{port}/o" if port else "",
            "OAUTH2_VALIDATOR_CLASS": "tests.idp.oidc_validator.GroupsValidator",
            "SCOPES": {"openid": "Sign you in", "profile": "Your name and groups", "email": "Your email address"},
            "PKCE_REQUIRED": False,
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def add_person(email: str, password: str, name: str, groups: list[str]) -> None:
    from django.contrib.auth.models import Group, User

    first, _, last = name.partition(" ")
    user, _ = User.objects.update_or_create(
        username=email, defaults={"email": email, "first_name": first, "last_name": last}
    )
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get_or_create(name=group)[0] for group in groups if group])


def add_client(client_id: str, secret: str, redirect_uri: str) -> None:
    from oauth2_provider.models import Application

    Application.objects.filter(client_id=client_id).delete()
    Application.objects.create(
        name=client_id,
        client_id=client_id,
        client_secret=secret,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uri,
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )


def serve(port: int) -> None:
    from django.core.wsgi import get_wsgi_application
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", port, get_wsgi_application(), threaded=True, use_reloader=False)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve", "person", "client"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--email", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--name", default="")
    parser.add_argument("--groups", default="")
    parser.add_argument("--client-id", default="")
    parser.add_argument("--secret", default="")
    parser.add_argument("--redirect-uri", default="")
    args = parser.parse_args(argv)
    configure(args.data, args.port)
    if args.command == "person":
        add_person(args.email, args.password, args.name, args.groups.split(","))
    elif args.command == "client":
        add_client(args.client_id, args.secret, args.redirect_uri)
    else:
        print(json.dumps({"port": args.port}), flush=True)
        serve(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
