import pytest

from pipeline.options import AuditConfig, build_parser, parse_args


def test_defaults_and_beam_args_pass_through():
    config, beam_args = parse_args(["--input", "a.pdf", "b/*.pdf", "--dpi", "150", "--runner", "DirectRunner",
                                    "--direct_num_workers=2"])
    assert config.inputs == ("a.pdf", "b/*.pdf")
    assert config.dpi == 150 and config.max_pages == 500 and config.output == "out"
    assert beam_args == ["--runner", "DirectRunner", "--direct_num_workers=2"]
    assert len(config.run_id) == 12
    assert config.review is True and parse_args(["--no-review"])[0].review is False


def test_input_flag_repeats_and_extends():
    config, _ = parse_args(["--input", "a.pdf", "--input", "c.pdf"])
    assert config.inputs == ("a.pdf", "c.pdf")


def test_no_input_means_demo():
    config, _ = parse_args([])
    assert config.inputs == ()


@pytest.mark.parametrize("kwargs, message", [
    ({"dpi": 20}, "dpi must be 50..600, got 20"),
    ({"max_pages": 0}, "max_pages must be at least 1, got 0"),
    ({"run_date": "25/11/2026"}, "run_date must be YYYY-MM-DD, got '25/11/2026'"),
    ({"device": "tpu"}, "device must be one of"),
    ({"batch_size": 0}, "batch_size must be 1..1024, got 0"),
])
def test_bad_values_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AuditConfig(**kwargs)


def test_help_explains_every_flag_with_default():
    text = build_parser().format_help()
    for flag in ("--input", "--references", "--expected", "--output", "--run_date", "--dpi", "--max_pages",
                 "--device", "--weights", "--batch_size"):
        assert flag in text
    assert "(default: 200)" in text and "(default: 500)" in text


def test_colour_dropout_is_chosen_checked_and_part_of_the_run_s_versions():
    from pipeline.audit import model_versions, resolve_models

    assert parse_args([])[0].colour_dropout == "none"
    config = parse_args(["--colour_dropout", "red"])[0]
    assert config.colour_dropout == "red"
    with pytest.raises(SystemExit):
        parse_args(["--colour_dropout", "blue"])
    with pytest.raises(ValueError, match="colour_dropout must be one of \\('none', 'red'\\), got 'blue'"):
        AuditConfig(colour_dropout="blue")
    plain = model_versions(resolve_models(AuditConfig()))
    assert "colour_dropout" not in plain  # earlier runs' rows still match for --skip_processed
    assert model_versions(resolve_models(config)) == plain + ";colour_dropout=red"
