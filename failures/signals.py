"""Domain signals of the failures app, sent after the transaction commits."""

from django.dispatch import Signal

# Sent once per committed batch of newly recorded failures; kwargs: failure_ids (list[int]).
failures_recorded = Signal()
