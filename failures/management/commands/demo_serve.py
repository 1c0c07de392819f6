"""Run the demo: the web server and the task runner (worker with beat), side by side."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandParser

from failures.demo import demo_banner


class Command(BaseCommand):
    help = (
        "Start the development web server and a Celery worker with its beat scheduler as two "
        "child processes, print where to go and the demo logins, and stop both on Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: object, **options: object) -> None:
        addr = str(options["addr"])
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
            ],
            env=env,
        )
        web = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "runserver", addr, "--noreload"], env=env
        )
        children = [web, worker]
        time.sleep(2)
        self.stdout.write(demo_banner(base_url=f"http://{addr}"))

        def stop(*_: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not any(c.returncode == -signal.SIGTERM for c in children):
            self.stderr.write("A demo process stopped unexpectedly; see the messages above.")
