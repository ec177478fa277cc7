"""`jobping stack service ...`: the stack as systemd user units or launchd agents."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from app.cli.common import PLAIN, console, error_exit, friendly_errors, load_settings, make_table
from jobping.settings import Settings

if TYPE_CHECKING:
    from app.service import Platform

service_app = typer.Typer(
    help="The stack as services that start at boot and restart on failure: systemd user units or launchd agents.",
    no_args_is_help=True,
    rich_markup_mode=PLAIN,
)


PlatformOption = Annotated[
    str | None, typer.Option("--platform", help="systemd (Linux) or launchd (macOS); default: this system's.")
]
DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Write the units here instead of the service manager's folder; nothing is started or stopped then.",
    ),
]


def _platform(given: str | None) -> Platform:
    from app import service

    if given is None:
        return service.default_platform()
    if given not in ("systemd", "launchd"):
        raise error_exit(f"--platform is systemd or launchd, not {given!r}", 2)
    return "systemd" if given == "systemd" else "launchd"


def _units(platform: str | None, folder: Path | None) -> tuple[Settings, Platform, Path]:
    """The settings, the platform and the units' folder a service command works on (``--dir`` or the manager's)."""
    from app import service

    settings = load_settings()
    chosen = _platform(platform)
    return settings, chosen, folder or service.default_dir(chosen)


@service_app.command("print")
def service_print(platform: PlatformOption = None) -> None:
    """Write every unit to standard output, each after a line `# file: <name>`; install nothing."""
    from app import service

    settings = load_settings()
    for unit in service.render(settings, _platform(platform)):
        # plain text: a path in a unit is never console markup
        sys.stdout.write(f"# file: {unit.file}\n{unit.text}")


@service_app.command("install")
def service_install(platform: PlatformOption = None, folder: DirOption = None) -> None:
    """Install the units, enable and start them (started at boot), and deploy onto their server."""
    from app import prefect_server, service

    settings, chosen, target = _units(platform, folder)
    with friendly_errors():
        written = service.install(settings, chosen, target, start=folder is None)
    names = ", ".join(path.name for path in written)
    if folder is not None:
        console.print(Text(f"wrote {names} to {target}; nothing started (`--dir` only writes)"), soft_wrap=True)
        return
    console.print(Text(f"installed and started {names} in {target}; deployed prefect.yaml"), soft_wrap=True)
    if os.environ.get(prefect_server.AUTH_ENV, "").strip():
        # no unit carries a secret: the services use data/prefect/api-auth unless told otherwise
        console.print(
            f"{prefect_server.AUTH_ENV} is set in this shell, but no unit carries it: put it in ~/.config/jobping/env "
            "(chmod 600) and install again, or unset it to use the services' password"
        )
    console.print(Text(f"logs: {settings.run_dir}/<part>.log, rotated; `jobping stack service status` shows them"),
                  soft_wrap=True)  # fmt: skip
    if chosen == "systemd":
        console.print(
            "they start when you log in; to start them at boot and keep them after you log out: "
            "`loginctl enable-linger $USER`"
        )


@service_app.command("uninstall")
def service_uninstall(platform: PlatformOption = None, folder: DirOption = None) -> None:
    """Stop and disable the units, and remove their files."""
    from app import service

    settings, chosen, target = _units(platform, folder)
    with friendly_errors():
        removed = service.uninstall(settings, chosen, target, stop=folder is None)
    console.print(Text(f"removed {', '.join(p.name for p in removed)}" if removed else "no jobping unit was installed"))


@service_app.command("status")
def service_status(platform: PlatformOption = None, folder: DirOption = None) -> None:
    """Each unit: installed or not, what the service manager says, what its runner says, its log."""
    from app import service

    states = service.status(*_units(platform, folder))
    rows = [(s.unit, "yes" if s.installed else "no", s.manager, s.runner) for s in states]
    console.print(make_table(["unit", "installed", "service manager", "runner"], rows))
    console.print(Text(f"logs: {', '.join(str(s.log) for s in states)} (rotated)"), soft_wrap=True)
