"""Serializers of the failures API."""

from rest_framework import serializers

from failures.models import DefinitionVersion, Failure, FailureDefinition


class FailureSerializer(serializers.ModelSerializer):
    """A failure with the identifiers a client needs to find it in its ATS."""

    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    code = serializers.CharField(source="definition.code", read_only=True)
    name = serializers.CharField(source="definition.name", read_only=True)
    stage_category = serializers.CharField(source="definition.stage_category", read_only=True)
    severity = serializers.CharField(source="definition.severity", read_only=True)
    definition_version = serializers.IntegerField(
        source="definition_version.number", read_only=True
    )
    application = serializers.CharField(source="application.ats_id", read_only=True)
    candidate = serializers.CharField(source="candidate.ats_id", read_only=True)
    job = serializers.CharField(source="job.ats_id", read_only=True)
    job_title = serializers.CharField(source="job.title", read_only=True)
    team = serializers.CharField(
        source="job.team.name", read_only=True, default=None, allow_null=True
    )
    region = serializers.CharField(
        source="job.region.code", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Failure
        fields = [
            "id",
            "organization",
            "code",
            "name",
            "stage_category",
            "severity",
            "definition_version",
            "status",
            "occurred_at",
            "detected_at",
            "application",
            "candidate",
            "job",
            "job_title",
            "team",
            "region",
            "status_reason",
            "details",
        ]
        read_only_fields = fields


class VersionSerializer(serializers.ModelSerializer):
    """A definition version: the rule and when it is in force."""

    class Meta:
        model = DefinitionVersion
        fields = ["number", "detector", "parameters", "status", "effective_from", "approved_at"]
        read_only_fields = fields


class DefinitionSerializer(serializers.ModelSerializer):
    """A catalogue entry: the standard code and its version in force."""

    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version_in_force = VersionSerializer(read_only=True, allow_null=True)

    class Meta:
        model = FailureDefinition
        fields = [
            "id",
            "organization",
            "code",
            "name",
            "description",
            "stage_category",
            "kind",
            "severity",
            "owner_role",
            "version_in_force",
        ]
        read_only_fields = fields
