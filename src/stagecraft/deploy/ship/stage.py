"""Deploy phase 4, ship: put each host's release images on it (SPEC 6).

``ssh`` transfer streams only what a host lacks; ``registry`` pushes the union of
the hosts' release images once, then every host pulls what it lacks, all with
the credentials of ``images.password_secret``. A failed push fails every live
host before any of them changes (see :mod:`stagecraft.deploy.ship` for the
mechanisms).

Example::

    ship_jobs(loaded, environment, release, jobs, secrets=secrets, environ=None,
              say=lambda host, message: print(host, message))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import EnvironmentConfig
from stagecraft.deploy import ship
from stagecraft.deploy.build import built_services
from stagecraft.deploy.release import Release
from stagecraft.deploy.rollout.result import HostJob, run_jobs
from stagecraft.deploy.ship import RegistryTarget, layers, stream
from stagecraft.errors import StagecraftError
from stagecraft.providers.secrets import SecretValue

Say = Callable[[str, str], None]
"""``say(host, message)``: one progress line."""


def ship_jobs(
    loaded: LoadedConfig,
    environment: EnvironmentConfig,
    release: Release,
    jobs: Sequence[HostJob],
    *,
    secrets: Mapping[str, SecretValue],
    environ: Mapping[str, str] | None,
    say: Say,
    live: bool = False,
    edge_images: Sequence[str] = (),
) -> None:
    """Put each host's images on it: over SSH (what it lacks) or pushed once, then pulled.

    ``edge_images`` are the edge proxy's (when the environment has routes): in
    ssh mode they go to the hosts that serve a route and lack them. With
    ``live``, each host's transfer is reported every second as it goes.
    """
    alive = [j for j in jobs if j.alive]
    release_images = {s.image for job in alive for s in job.rendered.services.values()}
    found = layers.inspect_present(sorted({*release_images, *edge_images}), environ)
    present = {tag: tag in found for tag in {*release_images, *edge_images}}  # one local call
    wanted = images_to_ship(loaded, environment, release, alive, present)
    target = registry_target(environment, release, secrets)
    if target is None:
        proxy = [image for image in edge_images if present.get(image)]
        for job in alive:
            if proxy and serves_routes(environment, job):
                wanted[job.name] = sorted({*wanted[job.name], *proxy})
        ready = [j for j in alive if wanted[j.name]]
        _ship_over_ssh(ready, wanted, environment, say, live=live, local=found)
        return
    pushing = sorted({image for images in wanted.values() for image in images})
    if pushing:
        try:
            ship.push(pushing, target)
        except StagecraftError as exc:
            for job in alive:
                job.fail(exc)
                job.error = f"push to {target.registry} failed: {exc.message}"
            return
        say("local", f"pushed {len(pushing)} image(s) to {target.registry}")

    def one(job: HostJob) -> None:
        images = wanted[job.name]
        if images:
            ship.pull_on_host(job.host, ship.local_image_ids(images), target)
            say(job.name, f"images on host ({len(images)})")

    run_jobs(alive, one, environment.deploy.parallel)


def _ship_over_ssh(
    jobs: Sequence[HostJob],
    wanted: Mapping[str, list[str]],
    environment: EnvironmentConfig,
    say: Say,
    *,
    live: bool,
    local: Mapping[str, layers.LocalImage],
) -> None:
    """Send each host the layers it lacks, all from one local export."""
    progress = _progress(say) if live else None
    try:
        result = ship.ship_over_ssh_many(
            [(j.host, wanted[j.name]) for j in jobs],
            parallel=environment.deploy.parallel,
            progress=progress,
            local=local,
        )
    except StagecraftError as exc:  # the local export (or a missing local image)
        for job in jobs:
            job.fail(exc)
        return
    for job, outcome in zip(jobs, result.outcomes, strict=True):
        if outcome.error is not None:
            job.fail(outcome.error)
            continue
        assert outcome.value is not None
        transfer = outcome.value.transfer
        job.shipped = {
            "sent": list(outcome.value.sent),
            "tagged": list(outcome.value.tagged),
            "skipped": list(outcome.value.skipped),
            **({"transfer": transfer.to_json()} if transfer is not None else {}),
        }
        if transfer is not None:
            say(job.name, f"images on host: {stream.describe(transfer)}")
        else:
            say(job.name, f"images on host ({len(wanted[job.name])})")


def _progress(say: Say) -> stream.Progress:
    def show(host: str, sending: stream.Sending) -> None:
        if sending.finished is None:
            mb = sending.bytes / 1e6
            say(
                host,
                f"shipping: {sending.layers}/{sending.layers_total} layer(s), {mb:.1f} MB sent "
                f"({sending.rate / 1e6:.1f} MB/s)",
            )

    return show


def images_to_ship(
    loaded: LoadedConfig,
    environment: EnvironmentConfig,
    release: Release,
    jobs: Sequence[HostJob],
    present: Mapping[str, bool],
) -> dict[str, list[str]]:
    """Per host, the images to ship: built ones present locally (ssh mode: any present).

    ``present`` says which images the local daemon has (:func:`images_present`).
    In registry mode an image that is not the release's own (``postgres:16``) is
    pulled by the host from where its name says, as compose would.
    """
    built = {release.image_for(s) for s in built_services(loaded)}
    ssh_mode = environment.images.transfer == "ssh"
    wanted: dict[str, list[str]] = {}
    for job in jobs:
        images = set()
        for service in job.rendered.services.values():
            image = service.image
            if present.get(image) and (image in built or ssh_mode):
                images.add(image)
        wanted[job.name] = sorted(images)
    return wanted


def serves_routes(environment: EnvironmentConfig, job: HostJob) -> bool:
    """Whether ``job``'s host runs a routed service (so it runs the edge proxy)."""
    return any(r.service in job.rendered.services for r in environment.routes.values())


def registry_target(
    environment: EnvironmentConfig, release: Release, secrets: Mapping[str, SecretValue]
) -> RegistryTarget | None:
    """Where registry mode pushes and pulls (``None`` in ssh mode), with its credentials."""
    images = environment.images
    if images.transfer != "registry":
        return None
    password = secrets.get(images.password_secret) if images.password_secret else None
    return RegistryTarget(
        release.repository,
        username=images.username,
        password=password,
        push_registry=images.push_registry,
    )
