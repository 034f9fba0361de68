"""The latency CLIs' ``--help``: choices listed, each default shown once, never "(default: None)"."""

from __future__ import annotations

import re

import pytest

from latency import agent, build_lut, convert_lut, measure, paper_phone, validate

TOOLS = {
    "build_lut": build_lut.main,
    "validate": validate.main,
    "measure": measure.main,
    "paper_phone": paper_phone.main,
    "convert_lut": convert_lut.main,
    "agent": agent.main,
}


def help_text(main, capsys) -> str:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.mark.parametrize("tool", TOOLS)
def test_help_shows_each_default_once(tool, capsys):
    text = help_text(TOOLS[tool], capsys)
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text
    for option in re.split(r"(?= --?[a-z])", text):
        assert len(re.findall(r"[(;] ?default", option)) <= 1, option


def test_build_lut_lists_its_choices(capsys):
    text = help_text(build_lut.main, capsys)
    for choices in ("{arm,host}", "{deterministic,mnn,ort}", "{disabled,basic,extended,all}", "{fp32,fp16,bf16}", "{thread,wall}", "{min,p10,median}"):
        assert choices in text
