import json
import pytest
from failures.models import RecruitingEvent, Application

@pytest.mark.django_db
@pytest.mark.parametrize("depth", [500, 900, 990, 1200, 5000, 100000])
def test_deep(post_event, make_event, depth):
    ev = make_event("application.created")
    body = json.dumps(ev).encode()
    body = body[:-1] + b', "details": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    r = post_event(body)
    print(depth, r.status_code, r.content[:200])

@pytest.mark.django_db
@pytest.mark.parametrize("where", ["details", "extra", "key"])
def test_nul(post_event, make_event, where):
    if where == "details":
        ev = make_event("application.created", details={"reason": "a\u0000b"})
    elif where == "extra":
        ev = make_event("application.created", note="a\u0000b")
    else:
        ev = make_event("application.created", details={"a\u0000b": 1})
    r = post_event(ev)
    print(where, r.status_code, r.content[:200])

@pytest.mark.django_db
def test_lone_surrogate(post_event, make_event):
    body = json.dumps(make_event("application.created", details={"r": "\ud800"})).encode()
    r = post_event(body)
    print("surrogate", r.status_code, r.content[:200])
