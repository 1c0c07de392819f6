"""Enumerations of the failures app."""

from django.db import models


class MembershipRole(models.TextChoices):
    """What a person does in an organization; decides permissions and scope."""

    BOARD = "board", "Governance board"
    HRBP = "hrbp", "HR business partner"
    RECRUITER = "recruiter", "Recruiter"
    TA_OPS = "ta_ops", "TA operations"
    IT_OPS = "it_ops", "IT operations"
    ANALYST = "analyst", "Analyst"


class StageCategory(models.TextChoices):
    """The shared vocabulary every organization maps its own stage names onto."""

    SOURCING = "sourcing", "Sourcing"
    SCREENING = "screening", "Screening"
    INTERVIEWING = "interviewing", "Interviewing"
    OFFER = "offer", "Offer"
    ONBOARDING = "onboarding", "Onboarding"
    HIRED = "hired", "Hired"
    CLOSED = "closed", "Closed"


# The categories a failure definition can be attached to (terminal ones are not stages).
PIPELINE_STAGE_CATEGORIES = [
    StageCategory.SOURCING,
    StageCategory.SCREENING,
    StageCategory.INTERVIEWING,
    StageCategory.OFFER,
    StageCategory.ONBOARDING,
]


class ApplicationStatus(models.TextChoices):
    """Where an application stands overall."""

    ACTIVE = "active", "Active"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    HIRED = "hired", "Hired"


class FailureKind(models.TextChoices):
    """Whether a definition describes a broken process step or a bad outcome."""

    PROCESS = "process", "Process"
    OUTCOME = "outcome", "Outcome"


class FailureSeverity(models.TextChoices):
    """How much a failure matters."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class FailureStatus(models.TextChoices):
    """Lifecycle of a recorded failure."""

    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    EXEMPTED = "exempted", "Exempted"
    DISMISSED = "dismissed", "Dismissed"


# Allowed status changes: a failure is worked on, then closed one way or another; any
# closed failure can be reopened if closing it was a mistake.
FAILURE_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    FailureStatus.OPEN: frozenset(
        {
            FailureStatus.ACKNOWLEDGED,
            FailureStatus.RESOLVED,
            FailureStatus.EXEMPTED,
            FailureStatus.DISMISSED,
        }
    ),
    FailureStatus.ACKNOWLEDGED: frozenset(
        {FailureStatus.RESOLVED, FailureStatus.EXEMPTED, FailureStatus.DISMISSED}
    ),
    FailureStatus.RESOLVED: frozenset({FailureStatus.OPEN}),
    FailureStatus.EXEMPTED: frozenset({FailureStatus.OPEN}),
    FailureStatus.DISMISSED: frozenset({FailureStatus.OPEN}),
}


class DetectorKind(models.TextChoices):
    """How a definition version finds its failures."""

    OFFER_DECLINED = "offer_declined", "Offer declined"
    STAGE_SLA = "stage_sla", "Stage SLA breach"
    CANDIDATE_DROP_OFF = "candidate_drop_off", "Candidate drop-off"
    RECRUITER_INACTIVITY = "recruiter_inactivity", "Recruiter inactivity"
    SCHEDULING_MISSED = "scheduling_missed", "Interview scheduling missed"
    FEEDBACK_OVERDUE = "feedback_overdue", "Interview feedback overdue"
    APPROVAL_MISSING = "approval_missing", "Offer approval missing"
    INTEGRATION_ERROR = "integration_error", "Integration error"
    BAD_HIRE = "bad_hire", "Bad hire"


class VersionStatus(models.TextChoices):
    """Lifecycle of a definition version; only an approved version detects."""

    DRAFT = "draft", "Draft"
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    RETIRED = "retired", "Retired"


class StrategicPolicy(models.TextChoices):
    """How a version treats applications to jobs flagged as strategic hires."""

    APPLY = "apply", "Apply the rule as for any job"
    EXTEND = "extend", "Extend time limits by the strategic multiplier"
    EXEMPT = "exempt", "Record as exempted, never as an open failure"


# Fields of a version that may still change once it is approved: retiring it is the only
# change an approved version allows.
VERSION_FIELDS_AFTER_APPROVAL = frozenset({"status", "retired_at"})


class ChangeRequestStatus(models.TextChoices):
    """Where a board's decision on a proposed version stands."""

    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ReviewDecision(models.TextChoices):
    """A board member's vote."""

    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class ReopenPolicy(models.TextChoices):
    """What happens to a version's open failures when their application is re-opened."""

    KEEP = "keep", "Keep them open"
    RESOLVE = "resolve", "Resolve them"
    DISMISS = "dismiss", "Dismiss them (the failure did not happen after all)"


class SlaUnit(models.TextChoices):
    """What a stage SLA counts."""

    CALENDAR_DAYS = "calendar_days", "Calendar days"
    BUSINESS_DAYS = "business_days", "Business days (working weekdays, public holidays off)"


class AtsVendor(models.TextChoices):
    """Which adapter speaks to the connection's ATS."""

    GENERIC = "generic", "Generic (failtrack canonical events)"
    GREENHOUSE = "greenhouse", "Greenhouse"
    LEVER = "lever", "Lever"
    ASHBY = "ashby", "Ashby"
    SMARTRECRUITERS = "smartrecruiters", "SmartRecruiters"
    TEAMTAILOR = "teamtailor", "Teamtailor"
    WORKABLE = "workable", "Workable"
    RECRUITEE = "recruitee", "Recruitee"
    CHECKR = "checkr", "Checkr (background checks)"


class EventKind(models.TextChoices):
    """Canonical recruiting event kinds every ATS adapter maps onto."""

    APPLICATION_CREATED = "application.created", "Application created"
    APPLICATION_STAGE_CHANGED = "application.stage_changed", "Stage changed"
    APPLICATION_REJECTED = "application.rejected", "Application rejected"
    APPLICATION_WITHDRAWN = "application.withdrawn", "Application withdrawn"
    APPLICATION_HIRED = "application.hired", "Candidate hired"
    OFFER_EXTENDED = "offer.extended", "Offer extended"
    OFFER_ACCEPTED = "offer.accepted", "Offer accepted"
    OFFER_DECLINED = "offer.declined", "Offer declined"
    APPLICATION_ON_HOLD = "application.on_hold", "Application put on hold"
    APPLICATION_RESUMED = "application.resumed", "Application resumed"
    OFFER_APPROVED = "offer.approved", "Offer approved"
    INTERVIEW_SCHEDULED = "interview.scheduled", "Interview scheduled"
    INTERVIEW_CANCELLED = "interview.cancelled", "Interview cancelled"
    INTERVIEW_COMPLETED = "interview.completed", "Interview held"
    INTERVIEW_NO_SHOW = "interview.no_show", "Candidate did not show up"
    SCORECARD_SUBMITTED = "scorecard.submitted", "Scorecard submitted"
    INTEGRATION_ERROR = "integration.error", "External system error"
    INTEGRATION_RECOVERED = "integration.recovered", "External system recovered"
    EMPLOYMENT_ENDED = "employment.ended", "Employment ended"
    BACKGROUND_CHECK_STARTED = "background_check.started", "Background check started"
    BACKGROUND_CHECK_COMPLETED = "background_check.completed", "Background check completed"
    BACKGROUND_CHECK_SUSPENDED = "background_check.suspended", "Background check suspended"
    BACKGROUND_CHECK_DISPUTED = "background_check.disputed", "Background check disputed"
    BACKGROUND_CHECK_FAILED = "background_check.failed", "Background check failed"
    JOB_CREATED = "job.created", "Job opened"
    JOB_UPDATED = "job.updated", "Job updated"
    JOB_CLOSED = "job.closed", "Job closed"
    INTEGRATION_PING = "integration.ping", "Connection test"
    APPLICATION_VIEWED = "application.viewed", "Application viewed (client-side capture)"


# Kinds about one interview: they carry an `interview` object.
INTERVIEW_KINDS = frozenset(
    {
        EventKind.INTERVIEW_SCHEDULED,
        EventKind.INTERVIEW_CANCELLED,
        EventKind.INTERVIEW_COMPLETED,
        EventKind.INTERVIEW_NO_SHOW,
        EventKind.SCORECARD_SUBMITTED,
    }
)
