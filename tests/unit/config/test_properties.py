"""Property tests: whatever the file holds, loading ends in a config or a ConfigError.

Random YAML text, random YAML documents built from the config's own key
vocabulary, and random mutations of the valid reference example (deleted
keys, changed types, unknown keys, random scalars) never raise anything else.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
from config_fakes import fake_providers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from ruamel.yaml import YAML

from stagecraft.config.document import display_path
from stagecraft.config.loader import LoadedConfig, load_config
from stagecraft.config.models import StagecraftConfig
from stagecraft.errors import ConfigError, ConfigNotFound

REFERENCE = Path(__file__).parent / "reference" / "stagecraft.yml"
SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("SC_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _vocabulary(model: type[BaseModel], seen: set[str]) -> set[str]:
    """Every field name reachable from ``model`` (nested models included)."""
    if model.__name__ in seen:
        return set()
    seen.add(model.__name__)
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for arg in _types(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _vocabulary(arg, seen)
    return names


def _types(annotation: Any) -> list[Any]:
    found = [annotation]
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _types(arg)
    return found


KEYS = sorted(
    _vocabulary(StagecraftConfig, set())
    | {"generic", "vite", "staging", "web-1", "web", "api", "service", "dev", "x-anchor", "hots"}
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["", "shop", "generic", "10s", "${X}", "${X:-d}", "$$", "${", "a:b", "web:80", "backend"]
    ),
    st.text(max_size=12),
)
KEY = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3), st.booleans())
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEY, inner, max_size=5)),
    max_leaves=25,
)


def _dump(data: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue()


def _load_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    with fake_providers():
        try:
            loaded = load_config(path, environ={"X": "1"})
        except ConfigError as exc:
            assert exc.issues and all(issue.line >= 0 for issue in exc.issues)
            assert all(line.startswith(f"{display_path(path)}:") for line in exc.lines())
        except ConfigNotFound:
            pass
        else:
            assert isinstance(loaded, LoadedConfig)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties") / "stagecraft.yml"


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("ab:- \n\t[]{}'\"#&*!|>%@`,?$")), max_size=80))
def test_random_yaml_text(scratch: Path, text: str) -> None:
    _load_text(scratch, text)


@SETTINGS
@given(data=DOCUMENTS)
def test_random_yaml_documents(scratch: Path, data: Any) -> None:
    _load_text(scratch, _dump(data))


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


REFERENCE_DATA = YAML(typ="safe", pure=True).load(REFERENCE.read_text())
REFERENCE_PATHS = _paths(REFERENCE_DATA)[1:]


def _mutate(data: Any, path: tuple[Any, ...], op: str, new: Any) -> Any:
    data = copy.deepcopy(data)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = new
    elif op == "insert" and isinstance(parent[last], dict):
        parent[last][f"unknown_{abs(hash(str(new))) % 97}"] = new
    elif op == "insert" and isinstance(parent[last], list):
        parent[last].append(new)
    else:
        parent[last] = new
    return data


@SETTINGS
@given(
    mutations=st.lists(
        st.tuples(
            st.sampled_from(REFERENCE_PATHS),
            st.sampled_from(["delete", "replace", "insert"]),
            DOCUMENTS,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutations_of_the_reference_example(
    scratch: Path, mutations: list[tuple[tuple[Any, ...], str, Any]]
) -> None:
    data = REFERENCE_DATA
    for path, op, new in mutations:
        try:
            data = _mutate(data, path, op, new)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or reshaped this path
    _load_text(scratch, _dump(data))


def test_unmutated_reference_loads(scratch: Path) -> None:
    scratch.write_text(_dump(REFERENCE_DATA))
    with fake_providers():
        assert load_config(scratch, environ={}).config.project.name == "shop"
