"""``stagecraft init``: detect a project and write a commented ``stagecraft.yml``.

The engine part (no click): :func:`detect` reads the project, the user's
answers turn the :class:`Detection` into :class:`InitChoices`, :func:`render`
produces the text and :func:`write_config` writes it. Example::

    from pathlib import Path
    from stagecraft.init import detect, output_path, render, write_config

    detection = detect(Path("."))
    choices = detection.choose(project="shop", frontend=False)
    write_config(output_path(None), render(choices), force=False)
"""

from stagecraft.init.compose import ComposeView, ServiceInfo, infra_kind
from stagecraft.init.detect import NoComposeFileError, detect
from stagecraft.init.model import (
    BackendGuess,
    DatabaseGuess,
    Detection,
    FrontendGuess,
    InitChoices,
    Route,
    is_valid_project_name,
    normalise_project_name,
)
from stagecraft.init.render import render
from stagecraft.init.write import ConfigExistsError, output_path, write_config

__all__ = [
    "BackendGuess",
    "ComposeView",
    "ConfigExistsError",
    "DatabaseGuess",
    "Detection",
    "FrontendGuess",
    "InitChoices",
    "NoComposeFileError",
    "Route",
    "ServiceInfo",
    "detect",
    "infra_kind",
    "is_valid_project_name",
    "normalise_project_name",
    "output_path",
    "render",
    "write_config",
]
