"""The parameters file of `make preflight`: the one `aws cloudformation deploy` takes."""

import json

import pytest

from tools.deploy.preflight import load_parameters
from tools.stage import ROOT


def test_the_example_file_is_read_as_the_cli_reads_it():
    # GIVEN the example parameters file WHEN read THEN each parameter comes back as a string
    parameters = load_parameters(ROOT / "deploy" / "parameters.example.json")
    assert parameters["CreateVpcEndpoints"] == "true"
    assert parameters["MySQLAdminSecretArn"].startswith("arn:aws:secretsmanager:")


def test_a_file_in_another_shape_is_refused_with_the_expected_one(tmp_path):
    # GIVEN a flat object (not the CLI's {"Parameters": {...}}) WHEN read THEN it is refused, showing the shape
    flat = tmp_path / "p.json"
    flat.write_text(json.dumps({"VpcId": "vpc-1"}))
    with pytest.raises(SystemExit, match='"Parameters"'):
        load_parameters(flat)
    with pytest.raises(SystemExit, match="no such file"):
        load_parameters(tmp_path / "absent.json")
