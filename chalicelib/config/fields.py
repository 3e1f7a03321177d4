"""How a setting is declared: a dataclass field that carries its environment variable, default and meaning.

    stage: str = field(metadata=setting(env="SLUICE_STAGE", meaning="the stage's name"))

The dataclass gives the attribute and its type; `setting` puts the rest into the field's metadata
(a field without a default, so mypy still checks that the loader gives every attribute),
where the loader (loader.py) and the documentation (tools/ops/configuration.py) read it.
A default is written as the environment would hold it ("360", "true"); a `FromSettings` default
is made from other settings' values, so a stage need not repeat what follows from its name.
"""

import dataclasses
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


class _Required:
    """The default of a setting that every stage must set."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


@dataclass(frozen=True)
class FromSettings:
    """A default made from other settings' values: {NAME} in `template` is NAME's value."""

    template: str
    dashes_as_underscores: bool = False  # a MySQL name: sluice_faults_deployed, not sluice_faults-deployed

    def inputs(self) -> list[str]:
        """The variables the template names."""
        return [name for _, name, _, _ in string.Formatter().parse(self.template) if name]

    def render(self, values: Mapping[str, str]) -> str:
        """The default, given the value of every input."""
        text = self.template.format_map(values)
        return text.replace("-", "_") if self.dashes_as_underscores else text


Default = str | None | FromSettings | _Required


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default, meaning and the bounds the loader checks."""

    env: str
    meaning: str
    default: Default = REQUIRED  # None: may be unset (the value is then None)
    minimum: int = 0  # integers: the smallest value accepted
    fallback: str | None = None  # read when `env` is unset or empty, before the default

    @property
    def required(self) -> bool:
        """Whether every stage must set it."""
        return self.default is REQUIRED


_KEY = "setting"


def setting(
    *, env: str, meaning: str, default: Default = REQUIRED, minimum: int = 0, fallback: str | None = None
) -> dict[str, Setting]:
    """A field's metadata declaring it read from the environment variable `env`: `field(metadata=setting(...))`."""
    return {_KEY: Setting(env, meaning, default, minimum, fallback)}


def declared(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Setting]]:
    """The fields of the dataclass `cls` that are settings, in their order, with their declarations."""
    for item in dataclasses.fields(cls):
        if _KEY in item.metadata:
            yield item, item.metadata[_KEY]
