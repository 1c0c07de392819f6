"""Fixtures shared by every test: organizations, members per role, signed events."""

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from failures.choices import MembershipRole
from failures.models import Organization, StageMapping
from failures.services import definitions_bootstrap, membership_grant
from integrations.credentials import credentials_forget
from integrations.ingest import deliveries_process_pending
from tests.factories import (
    AtsConnectionFactory,
    OrganizationFactory,
    RegionFactory,
    TeamFactory,
    UserFactory,
)


def _organization(slug: str, name: str) -> Organization:
    organization = OrganizationFactory(slug=slug, name=name)
    for code in ("EMEA", "AMER"):
        RegionFactory(organization=organization, code=code)
    TeamFactory(organization=organization, name="Platform")
    for stage, category in [
        ("Application Review", "screening"),
        ("Phone Screen", "screening"),
        ("Onsite", "interviewing"),
        ("Offer", "offer"),
    ]:
        StageMapping.objects.create(organization=organization, stage_name=stage, category=category)
    definitions_bootstrap(
        organization=organization, effective_from=timezone.now() - timedelta(days=365)
    )
    return organization


@pytest.fixture
def org(db) -> Organization:
    """An organization with regions EMEA and AMER, stage mappings and standard definitions."""
    return _organization("acme", "Acme")


@pytest.fixture
def other_org(db) -> Organization:
    """A second tenant whose data must never leak."""
    return _organization("globex", "Globex")


@pytest.fixture
def make_member(db) -> Callable[..., Any]:
    """make_member(role, organization, regions=[codes]) -> a user holding that role."""

    def make(role: str, organization: Organization, regions: tuple[str, ...] = (), **kwargs):
        user = UserFactory(**kwargs)
        membership_grant(
            actor=None,
            user=user,
            organization=organization,
            role=role,
            regions=[organization.regions.get(code=code) for code in regions],
        )
        user.refresh_from_db()
        return user

    return make


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def connection(org):
    """The generic ATS connection of `org`."""
    return AtsConnectionFactory(organization=org, secret="s3cret-for-tests-0123456789")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def sign(secret: str, body: bytes) -> str:
    """The X-Failtrack-Signature header value of a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def make_event() -> Callable[..., dict]:
    """make_event(kind=..., **overrides) -> a canonical event dict (nested keys merge)."""
    counter = iter(range(1, 10**9))

    def make(kind: str = "application.stage_changed", **overrides: Any) -> dict:
        event: dict[str, Any] = {
            "id": f"evt-{next(counter)}",
            "kind": kind,
            "occurred_at": "2026-11-02T09:30:00Z",
            "application": {
                "id": "app-9",
                "candidate_id": "cand-4",
                "source": "LinkedIn",
                "applied_at": "2026-10-20T08:00:00Z",
            },
            "job": {
                "id": "job-7",
                "title": "Backend Engineer",
                "team": "Platform",
                "region": "EMEA",
                "job_family": "Engineering",
            },
            "stage": {"name": "Phone Screen", "category": "screening"},
            "actor": {"id": "u-1", "role": "recruiter"},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(event.get(key), dict):
                event[key] = {**event[key], **value}
            elif value is None:
                event.pop(key, None)
            else:
                event[key] = value
        return event

    return make


@pytest.fixture
def post_event(client, connection) -> Callable[..., Any]:
    """post_event(payload | bytes, secret=..., content_type=..., connection=...) -> response.

    Like a worker would, it then processes the deliveries the hook stored (the hook itself
    only stores and answers; pass process=False to look at the stored delivery first).
    """

    def post(
        payload: Any,
        *,
        secret: str | None = None,
        content_type: str = "application/json",
        target=None,
        signature: str | None = None,
        process: bool = True,
        **headers: str,
    ):
        target = target or connection
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        header = signature if signature is not None else sign(secret or target.secret, body)
        response = client.post(
            f"/api/v1/hooks/{target.vendor}/{target.pk}/",
            data=body,
            content_type=content_type,
            headers={"X-Failtrack-Signature": header, **headers},
        )
        if process:
            deliveries_process_pending()
        return response

    return post


@pytest.fixture(autouse=True)
def _fresh_credentials():
    """Each test sees connections and secrets as its own database has them."""
    credentials_forget()
    yield
    credentials_forget()


ALL_ROLES = [role.value for role in MembershipRole]
