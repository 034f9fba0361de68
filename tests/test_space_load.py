"""Loading space files: the default and tiny spaces load, and every kind of malformed file
stops with one clear line naming the file, the key path and the fix."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

from space import DEFAULT_SPACE, load_space

TINY = Path(__file__).parent / "data" / "tiny_space.yaml"


def test_default_space_loads_with_the_issue_layout():
    space = load_space()
    assert space.path == DEFAULT_SPACE
    assert space.resolution == 224
    assert len(space.data.blocks()) == 16
    assert [stage.name for stage in space.data.stages] == ["s1", "s2", "s3", "s4", "s5"]
    assert [b.stride for b in space.data.blocks()] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    names = {d.name for d in space.decisions}
    assert {"width", "s3.out", "s4.depth", "b07.mid", "b07.se", "b07.branch", "b07.reuse", "b05.kernel"} <= names
    assert "b07.kernel" not in names  # stride-1 blocks have no kernel decision
    width = next(d for d in space.decisions if d.name == "width")
    assert set(width.choices) >= {0.5, 0.58, 0.8, 1.0, 1.11, 1.3, 1.5, 2.0}


def test_file_hash_is_sha256_of_the_bytes(tmp_path):
    space = load_space(TINY)
    assert space.file_hash() == hashlib.sha256(TINY.read_bytes()).hexdigest()
    edited = tmp_path / "tiny.yaml"
    edited.write_text(TINY.read_text() + "\n# a comment changes the hash\n")
    assert load_space(edited).file_hash() != space.file_hash()
    assert load_space(str(edited)).path == edited


def _tiny() -> dict:
    return yaml.safe_load(TINY.read_text())


def _edit(change):
    def make(doc: dict) -> dict:
        doc = copy.deepcopy(doc)
        change(doc)
        return doc

    return make


def _set(path: tuple, value):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return _edit(change)


def _delete(path: tuple):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return _edit(change)


ROW = ("stages", 1, "blocks", 0)  # b01, the stride-2 block of the tiny space

# kind: (edit of the tiny space, text the key path shows, text of the fix)
MALFORMED = {
    "unknown top-level key": (_set(("resolutoin",), 64), "resolutoin: unknown key", "check the spelling"),
    "unknown key in a block row": (_set(ROW + ("kernal",), 3), "stages[1].blocks[0].kernal: unknown key", "use one of"),
    "unknown choice name": (_set(("choices", "ratio"), [1.0]), "choices.ratio: unknown key", "use one of"),
    "missing required key": (_delete(("choices", "mid")), "choices.mid: missing key", "add 'mid:'"),
    "missing row field": (_delete(ROW + ("out",)), "stages[1].blocks[0].out: missing key", "add 'out:'"),
    "empty choice list": (_set(("choices", "mid"), []), "choices.mid: empty choice list", "give at least one choice"),
    "choices not a list": (_set(("choices", "width"), 1.0), "choices.width: expected a list", "write the choices as a list"),
    "duplicate choice": (_set(("choices", "kernel"), [3, 3]), "choices.kernel: choice 3 is listed twice", "remove the duplicate"),
    "zero ratio": (_set(("choices", "mid"), [0.0, 1.0]), "choices.mid[0]: ratio 0 gives no channels", "use a ratio above 0"),
    "negative width": (_set(("choices", "width"), [-1.0]), "choices.width[0]: ratio -1 gives no channels", "above 0"),
    "ratio giving zero channels": (_set(("choices", "mid"), [0.05, 1.0]), "(b00): reparam mid 16 x width 0.5 x ratio 0.05 < 1 channel", "raise or drop mid ratio 0.05"),
    "out ratio giving zero channels": (_set(("stages", 1, "out"), [0.05]), "(b01): out 24 x width 0.5 x ratio 0.05 < 1 channel", "raise or drop out ratio 0.05"),
    "string where a number belongs": (_set(("choices", "width"), ["1e-3"]), "choices.width[0]: expected a number, got the string '1e-3'", "1.0e-3 is a number"),
    "boolean where a number belongs": (_set(("choices", "out"), [True]), "choices.out[0]: expected a number", "plain decimal"),
    "unsupported kernel in a row": (_set(ROW + ("kernel",), 4), "stages[1].blocks[0].kernel: kernel 4 is not supported", "use one of [3, 5, 7]"),
    "unsupported kernel choice": (_set(("choices", "kernel"), [3, 9]), "choices.kernel[1]: kernel 9 is not supported", "use one of [3, 5, 7]"),
    "unsupported stride": (_set(ROW + ("stride",), 3), "stages[1].blocks[0].stride: stride 3 is not supported", "use one of [1, 2]"),
    "kernel choices on a stride-1 block": (_set(("stages", 0, "blocks", 0, "choices"), {"kernel": [3, 5]}), "stages[0].blocks[0].choices.kernel: b00 has stride 1", "only to stride-2 blocks"),
    "unknown branch": (_set(("choices", "branch"), ["bn", "batchnorm"]), "choices.branch[1]: 'batchnorm' is not a supported value", "use one of ['bn', 'identity', 'bn+identity', 'none']"),
    "unknown reuse": (_set(("choices", "reuse"), ["add"]), "choices.reuse[0]: 'add' is not a supported value", "use one of ['reparam', 'concat']"),
    "se not a boolean": (_set(("choices", "se"), ["yes please"]), "choices.se[0]: expected true or false", "write true or false"),
    "se_ratio out of range": (_set(("se_ratio",), 1.5), "se_ratio: 1.5 is outside (0, 1)", "such as 0.25"),
    "resolution not an integer": (_set(("resolution",), 64.5), "resolution: expected an integer", "whole number"),
    "depth above the stage's blocks": (_set(("stages", 1, "depth"), [1, 3]), "stages[1].depth: depth 3 exceeds the stage's 2 blocks", "use depths from 1 to 2"),
    "depth below one": (_set(("stages", 1, "depth"), [0, 2]), "stages[1].depth[0]: 0 is below 1", "whole number >= 1"),
    "group sizes not matching the blocks": (_set(("network", "group_sizes"), [1, 1]), "network.group_sizes: the groups hold 2 blocks but the stages list 3", "add up to"),
    "group spanning two stages": (_set(("network", "group_sizes"), [2, 1]), "network.group_sizes: a module group spans stages s1 and s2", "split group_sizes at stage boundaries"),
    "widths giving the same network": (_set(("choices", "width"), [1.0, 1.01]), "choices.width: widths 1 and 1.01 give the same stem and final conv", "further apart"),
    "stage without blocks": (_set(("stages", 1, "blocks"), []), "stages[1].blocks: expected a non-empty list", "at least one block"),
    "top level not a mapping": (lambda doc: ["a", "list"], "top level: expected a mapping", "write it as 'name: value' lines"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_space_gives_one_clear_line(tmp_path, kind):
    edit, where, fix = MALFORMED[kind]
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(edit(_tiny()), sort_keys=False))
    with pytest.raises(ValueError) as info:
        load_space(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert where in message
    assert fix in message


def test_depth_that_drops_a_stride_2_block(tmp_path):
    doc = _tiny()
    doc["stages"][1]["blocks"].append(dict(doc["stages"][1]["blocks"][0]))
    doc["stages"][1]["depth"] = [2, 3]
    doc["network"]["group_sizes"] = [1, 3]
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match=r"stages\[1\]\.depth: depth 2 would drop b03, which has stride 2; only trailing stride-1 blocks"):
        load_space(path)


def test_pyyaml_exponent_pitfall_in_a_real_file(tmp_path):
    # PyYAML reads 1e-3 (no dot) as a string: the loader must say so, not crash later.
    path = tmp_path / "space.yaml"
    path.write_text(TINY.read_text().replace("se_ratio: 0.25", "se_ratio: 1e-3"))
    with pytest.raises(ValueError, match=r"se_ratio: expected a number, got the string '1e-3'"):
        load_space(path)
    path.write_text(TINY.read_text().replace("se_ratio: 0.25", "se_ratio: 1.0e-3"))
    assert load_space(path).data.se_ratio == pytest.approx(1e-3)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(TINY.read_text().replace("width: [0.5, 1.0]", "width: [0.5, 1.0"))
    with pytest.raises(ValueError, match=r"space\.yaml: line \d+: .*fix the YAML syntax there"):
        load_space(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.yaml: cannot read the space file"):
        load_space(tmp_path / "nope.yaml")


def test_path_of_wrong_type():
    with pytest.raises(ValueError, match="path must be a str or Path"):
        load_space(42)
