"""How make package fills the merge template with a stage's values."""

import pytest

from tools.deploy.package import render_merge_template


def test_each_marker_gets_the_stages_value():
    assert render_merge_template("QueueName: '{{LOG_QUEUE_NAME}}'", {"LOG_QUEUE_NAME": "q"}) == "QueueName: 'q'"


def test_a_marker_the_stage_does_not_set_is_refused():
    with pytest.raises(SystemExit, match="uses \\{\\{MISSING\\}\\}, which the stage does not set"):
        render_merge_template("x: {{MISSING}}", {})


@pytest.mark.parametrize("value", ["a'b", "a\nb", 'a"b', "a b"])
def test_a_value_that_could_change_the_templates_structure_is_refused(value):
    with pytest.raises(SystemExit, match="cannot go into the template"):
        render_merge_template("x: '{{NAME}}'", {"NAME": value})
