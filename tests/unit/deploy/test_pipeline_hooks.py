"""When hooks run in `deploy` and `rollback`, and what their failure does (fake hosts, real hooks).

The pipeline runs for real down to the host-touching phases, which are replaced by
recorders: the hooks (real executables) and the recorders append to one event log,
so its order is the order things happened in.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from model_helpers import FLEET, example_environ

from stagecraft.cli.main import run as cli
from stagecraft.config.loader import LoadedConfig, load_project
from stagecraft.deploy import build, hooks, pipeline, secret_digest
from stagecraft.deploy.hooks import HookFailed, HookNotExecutable
from stagecraft.deploy.pipeline import (
    DeployFailed,
    DeployOptions,
    DeployResult,
    HostResult,
    PostHookFailed,
)
from stagecraft.deploy.rollout import HostContext, ServiceOutcome
from stagecraft.deploy.rollout.result import HostJob
from stagecraft.deploy.state import lock
from stagecraft.errors import ExitCode
from stagecraft.testing.fakes import FakeSSHHost

CANARY = "canary-" + uuid.uuid4().hex
HOOK = '#!/bin/sh\necho "$STAGECRAFT_HOOK" >> "$EVENTS"\nenv > "$EVENTS.$STAGECRAFT_HOOK"\n'
FAILING = HOOK + "echo 'not today' >&2\nexit 3\n"


class Deploy:
    """The fleet example in a temporary directory, its hooks, and the deploy's event log."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.events = root / "events"
        self.events.write_text("")
        self.hosts: list[FakeSSHHost] = []
        self.failing_host: str | None = None
        self.interrupt = False
        self._patch(monkeypatch)

    @property
    def loaded(self) -> LoadedConfig:
        return load_project(self.root / "stagecraft.yml", environ=example_environ())

    def hook(self, name: str, script: str = HOOK, mode: int = 0o755) -> None:
        path = self.root / hooks.HOOKS_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script)
        path.chmod(mode)

    def log(self, event: str) -> None:
        with self.events.open("a") as fh:
            fh.write(event + "\n")

    def order(self) -> list[str]:
        return self.events.read_text().split()

    def env_of(self, hook: str) -> dict[str, str]:
        text = (self.root / f"events.{hook}").read_text()
        assert CANARY not in text
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def options(self, **changes: Any) -> DeployOptions:
        environ = example_environ(
            EVENTS=str(self.events),
            POSTGRES_PASSWORD=CANARY,  # the env secrets provider reads these
            DATABASE_URL=f"postgres://fleet:{CANARY}@db:5432/fleet",
        )
        return DeployOptions(version="v1", environ=environ, **changes)

    def _patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def environment_hosts(environment: Any, options: Any = None) -> list[FakeSSHHost]:
            self.hosts = [FakeSSHHost(name, strict=False) for name in environment.hosts]
            return self.hosts

        @contextmanager
        def held(host: Any, info: Any, *, wait: float = 0, poll: float = 1.0) -> Iterator[None]:
            self.log("lock")
            try:
                yield None
            finally:
                self.log("unlock")

        def recorder(event: str) -> Callable[..., None]:
            return lambda *args, **kwargs: self.log(event)

        def prepare(*args: Any, jobs: list[HostJob], **kwargs: Any) -> None:
            self.log("prepare")
            for job in jobs:
                job.ctx = HostContext(
                    job.host,
                    job.rendered,
                    "/r",
                    project="fleet",
                    env="production",
                    health_timeout=5,
                )

        def run_steps(ctx: HostContext, steps: object) -> list[ServiceOutcome]:
            if ctx.host.name == self.failing_host:
                return [ServiceOutcome("web", "create", "failed", "not healthy", ExitCode(3))]
            return [ServiceOutcome("web", "create", "success")]

        def execute_build(*args: Any, **kwargs: Any) -> list[object]:
            self.log("build")
            return []

        def migrate(*args: Any, **kwargs: Any) -> None:
            if self.interrupt:
                raise KeyboardInterrupt

        monkeypatch.setattr(pipeline, "environment_hosts", environment_hosts)
        monkeypatch.setattr(lock, "held", held)
        monkeypatch.setattr(secret_digest, "ensure_key", lambda *args: b"k" * 32)
        monkeypatch.setattr(build, "image_exists", lambda image, environ=None: False)
        monkeypatch.setattr(build, "execute_build", execute_build)
        monkeypatch.setattr(pipeline, "ship_jobs", recorder("ship"))
        monkeypatch.setattr(pipeline, "_prepare", prepare)
        monkeypatch.setattr(pipeline, "run_steps", run_steps)
        monkeypatch.setattr(pipeline, "_migrate", migrate)
        monkeypatch.setattr(pipeline, "record", recorder("record"))
        monkeypatch.setattr(pipeline, "prune", recorder("prune"))


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Deploy:
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    return Deploy(root, monkeypatch)


ALL_DEPLOY_HOOKS = ("pre-build", "pre-deploy", "post-deploy", "on-failure")


def test_hooks_run_around_a_deploy_in_order_with_its_environment(fleet: Deploy) -> None:
    for name in ALL_DEPLOY_HOOKS:
        fleet.hook(name)

    result = pipeline.deploy(fleet.loaded, "production", fleet.options())

    assert fleet.order() == [
        "lock",
        "pre-build",
        "build",
        "pre-deploy",
        "ship",
        "prepare",
        "record",
        "unlock",
        "prune",
        "post-deploy",
    ]
    expected = {
        "STAGECRAFT_COMMAND": "deploy",
        "STAGECRAFT_PROJECT": "fleet",
        "STAGECRAFT_ENV": "production",
        "STAGECRAFT_VERSION": "v1",
        "STAGECRAFT_RELEASE": result.release,
        "STAGECRAFT_HOSTS": "web-1,web-2,data-1",
        "STAGECRAFT_PERFORMER": lock.local_identity(),
    }
    for name in ("pre-build", "pre-deploy", "post-deploy"):
        env = fleet.env_of(name)  # asserts no secret value in it
        assert {k: env[k] for k in expected} == expected
        assert env["STAGECRAFT_HOOK"] == name
        assert "POSTGRES_PASSWORD" not in env and "DATABASE_URL" not in env
    assert "STAGECRAFT_OUTCOME" not in fleet.env_of("pre-deploy")
    assert fleet.env_of("post-deploy")["STAGECRAFT_OUTCOME"] == "success"


def test_a_failing_pre_deploy_hook_stops_before_any_host_changes(fleet: Deploy) -> None:
    for name in ALL_DEPLOY_HOOKS:
        fleet.hook(name)
    fleet.hook("pre-deploy", FAILING)

    with pytest.raises(HookFailed) as caught:
        pipeline.deploy(fleet.loaded, "production", fleet.options())

    assert fleet.order() == ["lock", "pre-build", "build", "pre-deploy", "unlock"]  # no on-failure
    assert caught.value.message == (
        "hook pre-deploy exited with 3: deploy aborted before anything on the hosts changed"
    )
    assert caught.value.tail == ("not today",) and caught.value.exit_code == ExitCode.FAILED
    for host in fleet.hosts:  # the hosts were only read
        assert host.files == {} and all(
            "docker inspect" in c or "docker ps" in c for c in host.commands
        )
        assert host.closed


def test_a_failing_pre_build_hook_stops_before_the_build(fleet: Deploy) -> None:
    fleet.hook("pre-build", FAILING)
    fleet.hook("on-failure")
    with pytest.raises(HookFailed, match="hook pre-build exited with 3: deploy aborted"):
        pipeline.deploy(fleet.loaded, "production", fleet.options())
    assert fleet.order() == ["lock", "pre-build", "unlock"]


def test_pre_build_runs_only_when_an_image_is_built(
    fleet: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.hook("pre-build")
    monkeypatch.setattr(build, "image_exists", lambda image, environ=None: True)
    pipeline.deploy(fleet.loaded, "production", fleet.options())  # --version of a built release
    assert "pre-build" not in fleet.order() and "build" in fleet.order()


def test_a_failed_host_runs_on_failure_after_the_record_and_no_post_hook(fleet: Deploy) -> None:
    for name in ALL_DEPLOY_HOOKS:
        fleet.hook(name)
    fleet.failing_host = "web-2"

    with pytest.raises(DeployFailed) as caught:
        pipeline.deploy(fleet.loaded, "production", fleet.options())

    assert caught.value.exit_code == ExitCode.HEALTH_CHECK_FAILED  # on-failure changes nothing
    order = fleet.order()
    assert order[-4:] == ["record", "unlock", "prune", "on-failure"]
    assert "post-deploy" not in order
    assert fleet.env_of("on-failure")["STAGECRAFT_OUTCOME"] == "failed"


def test_an_interrupted_deploy_runs_on_failure_and_stays_interrupted(fleet: Deploy) -> None:
    fleet.hook("on-failure", HOOK + "exit 1\n")  # its own failure changes nothing
    fleet.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        pipeline.deploy(fleet.loaded, "production", fleet.options())
    assert fleet.order()[-3:] == ["record", "unlock", "on-failure"]
    assert fleet.env_of("on-failure")["STAGECRAFT_OUTCOME"] == "interrupted"


def test_a_failing_post_hook_fails_the_command_but_keeps_the_successful_result(
    fleet: Deploy,
) -> None:
    fleet.hook("post-deploy", FAILING)
    fleet.hook("on-failure")

    with pytest.raises(PostHookFailed) as caught:
        pipeline.deploy(fleet.loaded, "production", fleet.options())

    result = caught.value.result
    assert result.ok and caught.value.exit_code == ExitCode.FAILED
    assert caught.value.message == (
        "hook post-deploy exited with 3: the deploy itself succeeded: "
        f"release {result.release} stays recorded as successful"
    )
    assert fleet.order()[-4:] == ["record", "unlock", "prune", "post-deploy"]  # no on-failure


def test_skip_hooks_runs_none_and_ignores_their_modes(fleet: Deploy) -> None:
    fleet.hook("pre-deploy", FAILING, mode=0o644)
    with pytest.raises(HookNotExecutable):
        pipeline.deploy(fleet.loaded, "production", fleet.options())
    assert fleet.order() == []  # found before anything else
    pipeline.deploy(fleet.loaded, "production", fleet.options(skip_hooks=True))
    assert "pre-deploy" not in fleet.order() and "post-deploy" not in fleet.order()


def test_rollback_runs_the_rollback_hooks_and_builds_nothing(
    fleet: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*ALL_DEPLOY_HOOKS, "pre-rollback", "post-rollback"):
        fleet.hook(name)
    target = SimpleNamespace(id="20261101T000000Z-v0", version="v0")
    monkeypatch.setattr(pipeline, "rollback_target", lambda *args: target)

    result = pipeline.rollback(fleet.loaded, "production", options=fleet.options())

    assert fleet.order() == [
        "lock",
        "pre-rollback",
        "ship",
        "prepare",
        "record",
        "unlock",
        "prune",
        "post-rollback",
    ]
    env = fleet.env_of("post-rollback")
    assert (env["STAGECRAFT_COMMAND"], env["STAGECRAFT_VERSION"]) == ("rollback", "v0")
    assert env["STAGECRAFT_RELEASE"] == result.release != target.id


# -- the CLI: flags, hook lines, dry-run, a failed post hook ---------------------------------


CONFIG = """\
project: shop
compose: docker-compose.yml
environments:
  staging:
    hosts: {web-1: {address: 203.0.113.10, roles: [web]}}
    roles: {web: [api]}
"""
RESULT = DeployResult(
    "shop", "staging", "20261124T001500Z-v1", "v1", "deploy", (HostResult("web-1", "success"),)
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    (tmp_path / "docker-compose.yml").write_text("services:\n  api: {image: busybox}\n")
    for name in ("STAGECRAFT_ENV", "STAGECRAFT_CONFIG", "STAGECRAFT_QUIET"):
        monkeypatch.delenv(name, raising=False)
    logger = logging.getLogger("stagecraft")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield tmp_path
    logger.handlers[:], logger.level, logger.propagate = saved


def test_deploy_prints_hook_lines_and_passes_skip_hooks(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[DeployOptions] = []

    def fake_deploy(loaded: LoadedConfig, env: str, options: DeployOptions) -> DeployResult:
        seen.append(options)
        assert options.hook_output is not None
        options.hook_output("pre-deploy", "checks passed")
        return RESULT

    monkeypatch.setattr(pipeline, "deploy", fake_deploy)
    config = str(project / "stagecraft.yml")
    assert cli(["deploy", "-c", config, "--env", "staging"]) == ExitCode.OK
    assert "[hook pre-deploy] checks passed\n" in capsys.readouterr().err
    assert cli(["deploy", "-c", config, "--env", "staging", "--skip-hooks"]) == ExitCode.OK
    assert [o.skip_hooks for o in seen] == [False, True]


def test_a_failed_post_hook_prints_the_result_then_the_error_and_exits_1(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failure = HookFailed("post-deploy", "hook post-deploy exited with 1", returncode=1, tail=["x"])

    def fake_deploy(loaded: LoadedConfig, env: str, options: DeployOptions) -> DeployResult:
        raise PostHookFailed(RESULT, failure.because("kept", hint="only the hook"))

    monkeypatch.setattr(pipeline, "deploy", fake_deploy)
    code = cli(["deploy", "-c", str(project / "stagecraft.yml"), "--env", "staging"])
    out, err = capsys.readouterr()
    assert code == ExitCode.FAILED
    assert "web-1: success" in out
    assert "error: hook post-deploy exited with 1: kept\nerror:   [hook post-deploy] x\n" in err


def test_dry_run_lists_the_hooks_that_would_run_and_runs_none(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stagecraft.cli.commands import deploy as deploy_command

    monkeypatch.setattr(deploy_command, "show_plan", lambda *args, **kwargs: None)
    ran = project / "ran"
    for name in ("pre-deploy", "post-deploy", "pre-rollback"):
        path = project / hooks.HOOKS_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/sh\ntouch {ran}\n")
        path.chmod(0o755)
    argv = ["deploy", "-c", str(project / "stagecraft.yml"), "--env", "staging", "--dry-run"]

    assert cli(argv) == ExitCode.OK
    assert capsys.readouterr().err == (
        "hooks that would run (.stagecraft/hooks): pre-deploy, post-deploy (on success)\n"
    )
    assert cli([*argv, "--skip-hooks"]) == ExitCode.OK
    assert capsys.readouterr().err == "hooks: none would run (--skip-hooks)\n"

    target = SimpleNamespace(id="20261101T000000Z-v0", version="v0")
    monkeypatch.setattr(pipeline, "rollback_target", lambda *args: target)
    monkeypatch.setattr(pipeline, "rollback", lambda *args, **kwargs: pytest.fail("rolled back"))
    argv[0] = "rollback"
    assert cli(argv) == ExitCode.OK
    assert capsys.readouterr().err == (
        "[-] would roll back to 20261101T000000Z-v0 (v0)\n"
        "hooks that would run (.stagecraft/hooks): pre-rollback\n"
    )
    assert not ran.exists()

    (project / hooks.HOOKS_DIR / "pre-deploy").chmod(0o644)
    argv[0] = "deploy"
    assert cli(argv) == ExitCode.FAILED
    assert "error: hook .stagecraft/hooks/pre-deploy is not executable" in capsys.readouterr().err
