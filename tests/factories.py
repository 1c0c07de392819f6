"""factory_boy factories for the object graphs tests need."""

import itertools
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from failures.choices import ApplicationStatus, StageCategory
from failures.models import (
    Application,
    AtsConnection,
    Candidate,
    ConnectionSecret,
    Failure,
    Job,
    Organization,
    Region,
    Team,
)

PASSWORD = "pw-for-tests"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ["organization", "code"]

    organization = factory.SubFactory(OrganizationFactory)
    code = "EMEA"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ["organization", "name"]

    organization = factory.SubFactory(OrganizationFactory)
    name = "Platform"


class AtsConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AtsConnection
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    name = "Test ATS"

    @factory.post_generation
    def secret(self, create: bool, extracted: str | None, **kwargs) -> None:
        """AtsConnectionFactory(secret="...") stores that signing secret (encrypted)."""
        if create:
            value = extracted or f"secret-{self.pk.hex[:8]}-0123456789abcdef"
            row = ConnectionSecret(connection=self, label="primary")
            row.set_value(value)
            row.save()


_ids = itertools.count(1)


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    organization = factory.SubFactory(OrganizationFactory)
    connection = factory.SubFactory(
        AtsConnectionFactory, organization=factory.SelfAttribute("..organization")
    )
    ats_id = factory.LazyFunction(lambda: f"job-{next(_ids)}")
    title = "Backend Engineer"
    region = factory.SubFactory(RegionFactory, organization=factory.SelfAttribute("..organization"))
    team = factory.SubFactory(TeamFactory, organization=factory.SelfAttribute("..organization"))
    job_family = "Engineering"


class CandidateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Candidate

    organization = factory.SubFactory(OrganizationFactory)
    connection = factory.SubFactory(
        AtsConnectionFactory, organization=factory.SelfAttribute("..organization")
    )
    ats_id = factory.LazyFunction(lambda: f"cand-{next(_ids)}")


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    job = factory.SubFactory(JobFactory)
    organization = factory.SelfAttribute("job.organization")
    connection = factory.SelfAttribute("job.connection")
    candidate = factory.SubFactory(
        CandidateFactory,
        organization=factory.SelfAttribute("..organization"),
        connection=factory.SelfAttribute("..connection"),
    )
    ats_id = factory.LazyFunction(lambda: f"app-{next(_ids)}")
    source = "LinkedIn"
    current_stage = "Phone Screen"
    stage_category = StageCategory.SCREENING
    stage_entered_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    category_entered_at = factory.SelfAttribute("stage_entered_at")
    status = ApplicationStatus.ACTIVE
    applied_at = factory.SelfAttribute("stage_entered_at")


class FailureFactory(factory.django.DjangoModelFactory):
    """A failure of the organization's bootstrapped definition `code` (default OFR-DECLINED)."""

    class Meta:
        model = Failure

    class Params:
        code = "OFR-DECLINED"

    application = factory.SubFactory(ApplicationFactory)
    organization = factory.SelfAttribute("application.organization")
    candidate = factory.SelfAttribute("application.candidate")
    job = factory.SelfAttribute("application.job")
    definition = factory.LazyAttribute(lambda o: o.organization.definitions.get(code=o.code))
    definition_version = factory.LazyAttribute(lambda o: o.definition.versions.get(number=1))
    dedupe_key = factory.LazyFunction(lambda: f"test:{next(_ids)}")
    occurred_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=2))
    detected_at = factory.LazyFunction(timezone.now)
