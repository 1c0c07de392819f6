"""Connections: encrypted secrets, several at once, the shell command, key rotation."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection as db_connection
from django.test import override_settings

from failures import crypto
from failures.models import AtsConnection, ConnectionSecret
from failures.services import connection_create, connection_secret_add, connection_secret_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_keys():
    crypto.keys_reset()
    yield
    crypto.keys_reset()


def test_secrets_are_stored_encrypted_and_read_back(connection):
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT ciphertext FROM failures_connectionsecret")
        (stored,) = cursor.fetchone()

    assert "s3cret-for-tests" not in stored
    assert connection.secret == "s3cret-for-tests-0123456789"
    assert ConnectionSecret.objects.get().fingerprint == crypto.fingerprint(connection.secret)


def test_history_rows_never_hold_the_secret(connection):
    history_fields = {f.name for f in ConnectionSecret.history.model._meta.fields}

    assert "ciphertext" not in history_fields
    assert ConnectionSecret.history.count() >= 1


def test_several_secrets_are_active_at_once_until_revoked(connection):
    second = connection_secret_add(actor=None, connection=connection, secret="rotated-secret-42")

    assert {s.label for s in connection.signing_secrets()} == {"primary", second.label}
    connection_secret_revoke(actor=None, secret=ConnectionSecret.objects.get(label="primary"))
    assert [s.value for s in connection.signing_secrets()] == ["rotated-secret-42"]


def test_a_secret_for_one_event_type_only_signs_that_type(connection):
    connection_secret_add(
        actor=None, connection=connection, secret="stage-change-key", event_type="candidateHired"
    )

    assert "stage-change-key" in [s.value for s in connection.signing_secrets("candidateHired")]
    assert "stage-change-key" not in [s.value for s in connection.signing_secrets("other")]


@pytest.mark.parametrize("secret", ["short", "x" * 501])
def test_too_short_or_long_secrets_are_refused(connection, secret):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        connection_secret_add(actor=None, connection=connection, secret=secret)
    assert "secret" in caught.value.message_dict


def test_rotation_reencrypts_under_the_new_key(org):
    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()
    with override_settings(FAILTRACK_ENCRYPTION_KEYS=[old_key]):
        crypto.keys_reset()
        connection_create(actor=None, organization=org, name="ATS", secret="under-the-old-key")
    with override_settings(FAILTRACK_ENCRYPTION_KEYS=[new_key, old_key]):
        crypto.keys_reset()
        out = io.StringIO()
        call_command("secrets_rotate", stdout=out)
        assert "Re-encrypted" in out.getvalue()
    with override_settings(FAILTRACK_ENCRYPTION_KEYS=[new_key]):
        crypto.keys_reset()
        assert ConnectionSecret.objects.get().value == "under-the-old-key"


def test_rotation_without_the_old_key_refuses_and_changes_nothing(connection):
    before = ConnectionSecret.objects.get().ciphertext
    with override_settings(FAILTRACK_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        crypto.keys_reset()
        with pytest.raises(CommandError, match="old key"):
            call_command("secrets_rotate", stdout=io.StringIO())
    assert ConnectionSecret.objects.get().ciphertext == before


def test_connection_create_prints_the_hook_url(org):
    out = io.StringIO()

    call_command(
        "connection_create",
        "--organization",
        org.slug,
        "--vendor",
        "greenhouse",
        "--secret",
        "greenhouse-secret-key",
        stdout=out,
    )

    connection = AtsConnection.objects.get(vendor="greenhouse")
    assert connection.organization == org
    assert connection.secret == "greenhouse-secret-key"
    text = out.getvalue()
    assert f"/api/v1/hooks/greenhouse/{connection.pk}/" in text
    assert "greenhouse-secret-key" not in text  # a given secret is never echoed


def test_connection_create_generates_and_shows_a_secret_once(org):
    out = io.StringIO()

    call_command("connection_create", "--organization", org.slug, "--vendor", "lever", stdout=out)

    connection = AtsConnection.objects.get(vendor="lever")
    assert f"shown once, copy it into the ATS now): {connection.secret}" in out.getvalue()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--organization", "nope", "--vendor", "lever"], "No organization with slug 'nope'"),
        (["--organization", "acme", "--vendor", "lever", "--secret", "short"], "8 characters"),
    ],
)
def test_connection_create_errors_name_the_problem(org, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("connection_create", *arguments, stdout=io.StringIO())
    assert not AtsConnection.objects.filter(vendor="lever").exists()


def test_connection_create_refuses_an_unknown_vendor(org):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("connection_create", "--organization", org.slug, "--vendor", "taleo")


def _change_form(connection, **overrides):
    secret = connection.secrets.order_by("pk").first()
    data = {
        "organization": connection.organization_id,
        "name": connection.name,
        "vendor": connection.vendor,
        "is_active": "on",
        "new_secret": "",
        "new_secret_event_type": "",
        "secrets-TOTAL_FORMS": "1",
        "secrets-INITIAL_FORMS": "1",
        "secrets-MIN_NUM_FORMS": "0",
        "secrets-MAX_NUM_FORMS": "1000",
        "secrets-0-id": secret.pk,
        "secrets-0-connection": connection.pk,
        "secrets-0-is_active": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_the_admin_adds_a_secret_and_revokes_one_without_ever_showing_them(
    client, org, connection, make_member
):
    from django.urls import reverse

    client.force_login(make_member("it_ops", org))
    url = reverse("admin:failures_atsconnection_change", args=[connection.pk])

    page = client.get(url).content.decode()
    assert connection.secret not in page
    response = client.post(url, _change_form(connection, new_secret="rotated-in-admin-1"))
    assert response.status_code == 302, response.content
    assert sorted(s.value for s in connection.signing_secrets()) == [
        "rotated-in-admin-1",
        "s3cret-for-tests-0123456789",
    ]
    assert "rotated-in-admin-1" not in client.get(url).content.decode()

    primary = connection.secrets.get(label="primary")
    form = _change_form(connection, **{"secrets-0-is_active": None})
    form.update(
        {
            "secrets-TOTAL_FORMS": "2",
            "secrets-INITIAL_FORMS": "2",
            "secrets-0-id": primary.pk,
            "secrets-1-id": connection.secrets.exclude(pk=primary.pk).get().pk,
            "secrets-1-connection": connection.pk,
            "secrets-1-is_active": "on",
        }
    )
    assert client.post(url, form).status_code == 302
    assert [s.value for s in connection.signing_secrets()] == ["rotated-in-admin-1"]
    assert primary.history.first().history_change_reason == "revoked"


def test_the_admin_refuses_a_too_short_secret_naming_it(client, org, connection, make_member):
    from django.urls import reverse

    client.force_login(make_member("it_ops", org))
    url = reverse("admin:failures_atsconnection_change", args=[connection.pk])

    response = client.post(url, _change_form(connection, new_secret="short"))

    assert response.status_code == 200
    assert "8 to 500 characters" in response.content.decode()
    assert connection.secrets.count() == 1
