"""Template tags for the governance admin."""

from django import template

from failures.governance import pending_reviews

register = template.Library()


@register.inclusion_tag("admin/failures/pending_reviews.html", takes_context=True)
def pending_reviews_panel(context: dict) -> dict:
    """The change requests waiting for the current user's vote."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"pending": pending_reviews(user=user) if user is not None else []}
