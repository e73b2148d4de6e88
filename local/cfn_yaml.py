"""Load CloudFormation/SAM YAML, turning short-form intrinsic tags into their long form.

``!Ref X`` becomes ``{"Ref": "X"}``, ``!Condition X`` becomes ``{"Condition": "X"}``,
``!GetAtt A.B`` becomes ``{"Fn::GetAtt": ["A", "B"]}``, and every other ``!Name`` becomes
``{"Fn::Name": value}`` (``!Sub``, ``!Join``, ``!If``, ``!Equals``, ``!Select``, ``!Split``,
``!FindInMap``, ``!GetAZs``, ``!ImportValue``, ``!Not``, ``!And``, ``!Or``, ``!Base64``,
``!Cidr``, ``!Length``, ``!ToJsonString``, ...), which is exactly what CloudFormation does.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import yaml

__all__ = ["CfnLoader", "load", "load_file"]


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that also accepts CloudFormation's ``!`` intrinsic function tags."""


def _node_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = _node_value(loader, node)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # "Resource.Attribute.With.Dots": only the first dot separates the resource.
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """Parse CloudFormation YAML from a string or stream."""
    return yaml.load(stream, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader


def load_file(path: str | Path) -> Any:
    """Parse the CloudFormation YAML file at ``path``."""
    with open(path, encoding="utf-8") as stream:
        return load(stream)
