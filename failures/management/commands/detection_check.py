"""Run the simulator, detect, and compare with its ground truth, kind by kind."""

from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from failures.management.commands.simulate_ats import SimulationCommand
from failures.models import Organization
from failures.services import detection_scan
from failures.simulation import ORGANIZATIONS, truth_compare


class Command(SimulationCommand):
    help = (
        "Simulate an ATS into the configured database, run detection, and print precision "
        "and recall per failure code. Exits non-zero when either is below 100 %."
    )

    def handle(self, *args: object, **options: Any) -> None:
        _, organizations = self.validated(options)
        slugs = [slug for slug, _ in ORGANIZATIONS[:organizations]]
        if Organization.objects.filter(slug__in=slugs).exists():
            raise CommandError(
                f"Organizations {', '.join(slugs)} already exist here: run the check on an "
                "empty database so ground truth and detections cover the same data."
            )
        until = timezone.now().replace(microsecond=0)  # the simulator works in seconds
        result = self.simulate(options, until=until)
        detection_scan(now=until)
        failed = False
        self.stdout.write(
            f"{'organization':<12} {'code':<16} {'truth':>7} {'found':>7} "
            f"{'precision':>10} {'recall':>8} {'exempt ok':>10} {'excluded':>10}"
        )
        for org in result.organizations:
            for row in truth_compare(organization=org.organization):
                truth = row.true_positives + row.false_negatives
                found = row.true_positives + row.false_positives
                exempt = "yes" if row.status_mismatches == 0 else f"{row.status_mismatches} off"
                excluded = f"{row.excluded_counted}/{row.excluded_expected}"
                self.stdout.write(
                    f"{org.organization.slug:<12} {row.code:<16} {truth:>7} {found:>7} "
                    f"{row.precision:>10.2%} {row.recall:>8.2%} {exempt:>10} {excluded:>10}"
                )
                failed |= not row.exact
        if failed:
            raise CommandError("Detection does not match the ground truth.")
        self.stdout.write(self.style.SUCCESS("Detection matches the ground truth exactly."))
