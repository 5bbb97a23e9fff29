"""The github CI provider: workflow goldens that parse as the intended YAML; the YAML writer."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from syrupy.assertion import SnapshotAssertion

from stagecraft.providers import registry
from stagecraft.providers.builtin.ci_github import GitHubCI
from stagecraft.providers.ci import CiEnvironment, CIError, dump_yaml

ENVIRONMENTS = [
    CiEnvironment("staging", ("POSTGRES_PASSWORD", "STRIPE_KEY")),
    CiEnvironment("production", ("STRIPE_KEY", "POSTGRES_PASSWORD", "STRIPE_KEY")),
    CiEnvironment("preview"),
]


def _github(raw: dict[str, Any]) -> GitHubCI:
    provider = registry("ci").create("github", raw)
    assert isinstance(provider, GitHubCI)
    return provider


def _load(text: str) -> Any:
    return YAML(typ="safe").load(io.StringIO(text))


CASES: dict[str, tuple[dict[str, Any], list[CiEnvironment]]] = {
    "defaults-no-environments": ({}, []),
    "two-branches": (
        {
            "branches": {"staging": "main", "production": "release/v1"},
            "test_command": "npm ci && npm test -- --reporter=dot",
            "python_version": "3.11",
            "stagecraft_spec": "stagecraft-cli==1.2.0",
        },
        ENVIRONMENTS,
    ),
    "manual-only": (
        {"workflow_path": ".github/workflows/deploy.yaml", "runs_on": "self-hosted"},
        ENVIRONMENTS[:1],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_workflow_golden(name: str, yaml_snapshot: SnapshotAssertion) -> None:
    raw, envs = CASES[name]
    gh = _github(raw)
    text = gh.render_workflow("shop", envs)
    assert text == yaml_snapshot
    assert _load(text) == gh.workflow(envs)


def test_workflow_parses_with_the_expected_keys() -> None:
    raw, envs = CASES["two-branches"]
    doc = _load(_github(raw).render_workflow("shop", envs))
    assert doc["on"]["push"]["branches"] == ["main", "release/v1"]
    assert "pull_request" in doc["on"]
    assert doc["on"]["workflow_dispatch"]["inputs"]["environment"]["options"] == [
        "preview",
        "production",
        "staging",
    ]
    assert list(doc["jobs"]) == ["test", "deploy-preview", "deploy-production", "deploy-staging"]
    test_steps = [s.get("run") for s in doc["jobs"]["test"]["steps"]]
    assert test_steps[-3:] == [
        "pipx install stagecraft-cli==1.2.0",
        "stagecraft config validate",
        "npm ci && npm test -- --reporter=dot",
    ]
    staging = doc["jobs"]["deploy-staging"]
    assert staging["needs"] == "test"
    assert staging["environment"] == "staging"
    assert "github.ref == 'refs/heads/main'" in staging["if"]
    assert "inputs.environment == 'staging'" in staging["if"]
    assert staging["concurrency"] == {
        "group": "stagecraft-deploy-staging",
        "cancel-in-progress": False,
    }
    deploy = staging["steps"][-1]
    assert deploy["run"] == "stagecraft deploy --env staging"
    assert deploy["env"] == {
        "POSTGRES_PASSWORD": "${{ secrets.POSTGRES_PASSWORD }}",
        "STRIPE_KEY": "${{ secrets.STRIPE_KEY }}",
    }
    preview = doc["jobs"]["deploy-preview"]
    assert "refs/heads" not in preview["if"]
    assert "env" not in preview["steps"][-1]
    ssh = staging["steps"][-2]
    assert ssh["env"]["SSH_PRIVATE_KEY"] == "${{ secrets.STAGECRAFT_SSH_KEY }}"
    assert "ssh-add -" in ssh["run"]


def test_workflow_path_is_configurable() -> None:
    assert _github({}).workflow_path == ".github/workflows/stagecraft.yml"
    assert _github({"workflow_path": ".github/workflows/d.yaml"}).workflow_path.endswith("d.yaml")


def test_branches_for_unknown_environments_are_an_error() -> None:
    with pytest.raises(CIError) as info:
        _github({"branches": {"prod": "main"}}).render_workflow("shop", ENVIRONMENTS)
    assert "unknown environment(s): prod" in info.value.message
    assert info.value.hint == "known environments: preview, production, staging"


def test_github_reserved_secret_names_are_an_error() -> None:
    with pytest.raises(CIError, match="GITHUB_TOKEN"):
        _github({}).render_workflow("shop", [CiEnvironment("staging", ("GITHUB_TOKEN",))])


@pytest.mark.parametrize(
    ("name", "secrets", "message"),
    [
        ("stag ing", (), "cannot be used in a CI job name"),
        ("staging", ("${{ github.token }}",), "invalid secret name"),
    ],
)
def test_names_that_would_break_the_workflow_are_rejected(
    name: str, secrets: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CIError, match=message):
        CiEnvironment(name, secrets)


scalars = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.booleans(),
    st.none(),
    st.sampled_from(["on", "No", "3.12", ".5", "a: b", "x #y", "- z", "true", "~", "a\nb\n"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=12), children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), documents, min_size=1, max_size=5))
def test_dump_yaml_reads_back_as_the_same_data(data: dict[str, Any]) -> None:
    assert _load(dump_yaml(data)) == data
