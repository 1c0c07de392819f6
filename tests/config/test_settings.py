"""Settings refuse an unsafe production start; the deploy checks pass; health and schema."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def clean_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """An environment with none of the test run's settings (test_settings sets several)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        # Keep the settings module from creating var/ directories inside the checkout.
        "FAILTRACK_VAR_DIR": str(tmp_path / "var"),
    }
    env.update(variables)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_without_secret_key_refuse_to_load(tmp_path):
    result = run(["-c", "import config.settings"], clean_env(tmp_path, DEBUG="0"))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_an_empty_secret_key_is_refused_too(tmp_path):
    result = run(["-c", "import config.settings"], clean_env(tmp_path, DEBUG="0", SECRET_KEY=""))

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_debug_settings_load_without_a_secret_key(tmp_path):
    code = "import config.settings as s; print(s.DEBUG, len(s.SECRET_KEY) > 40)"

    result = run(["-c", code], clean_env(tmp_path, DEBUG="1"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True"


def test_deploy_checks_pass_with_production_settings(tmp_path):
    env = clean_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="failtrack.example.com",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/failtrack"),
        CELERY_BROKER_URL="redis://127.0.0.1:6379/14",
    )

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_checks_fail_on_an_insecure_setting(tmp_path):
    # The check above is meaningful: the same command fails when a protection is off.
    env = clean_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="failtrack.example.com",
        SECURE_SSL_REDIRECT="0",
    )

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


@pytest.mark.django_db
def test_health_answers_ok(client):
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_api_schema_lists_the_hook_and_failures_paths(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert "/api/v1/hooks/{vendor}/{connection_id}/" in paths
    assert "post" in paths["/api/v1/hooks/{vendor}/{connection_id}/"]
    assert "/api/v1/failures/" in paths
    assert any(path.startswith("/api/v1/failures/{") for path in paths)
