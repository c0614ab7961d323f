"""The user guide stays true to the code: the configuration reference matches conf/, the English and Japanese
READMEs list the same commands, and every train.py and render.py command in the guides composes."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"
RENDER_CONF = CONF / "render"
README = PROJECT_ROOT / "README.md"
README_JA = PROJECT_ROOT / "README.ja.md"
# The pages whose commands are checked against conf/.
GUIDES = [README, README_JA, *(PROJECT_ROOT / "docs" / name for name in ("wandb.md", "sweeps.md", "distributed.md", "index.md"))]

FENCE = re.compile(r"^```(?P<language>[\w-]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
# Words that end a command inside a line: the overrides of train.py stop there.
SHELL_OPERATORS = {"&&", "||", "|", ";", ">", ">>", "2>&1", "&"}


def load_reference_script():
    spec = importlib.util.spec_from_file_location("config_reference", PROJECT_ROOT / "scripts" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the file runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def shell_commands(path: Path) -> list[str]:
    """Return the command lines of a Markdown file's shell code blocks, without comments, continuations joined."""
    commands = []
    for block in FENCE.finditer(path.read_text(encoding="utf-8")):
        if block["language"] not in SHELL_LANGUAGES:
            continue
        text = block["body"].replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            # A comment starts at a # that begins the line or follows a space.
            line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
            if line:
                commands.append(" ".join(line.split()))
    return commands


def script_arguments(command: str, script: str) -> list[str] | None:
    """Return the arguments after ``script`` (train.py or render.py) in a command line, or None when it does not run it."""
    words = shlex.split(command)
    for index, word in enumerate(words):
        if word == script or word.endswith("/" + script):
            arguments = []
            for argument in words[index + 1 :]:
                if argument in SHELL_OPERATORS:
                    break
                arguments.append(argument)
            return arguments
    return None


def guide_commands(script: str) -> list[tuple[str, str, list[str]]]:
    """Return (page, command, arguments) for every command in the guides that runs ``script``."""
    found = []
    for page in GUIDES:
        if not page.is_file():
            continue
        for command in shell_commands(page):
            arguments = script_arguments(command, script)
            if arguments is not None:
                found.append((page.name, command, arguments))
    return found


def expand_sweeps(overrides: list[str]) -> list[list[str]]:
    """Turn a multirun's overrides into single-run override lists: every value of each swept key, the others at their first."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for text, override in zip(overrides, parsed):
        if override.is_sweep_override():
            left = text.split("=", 1)[0]
            choices.append([f"{left}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([text])
    runs = [[options[0] for options in choices]]
    for position, options in enumerate(choices):
        for option in options[1:]:
            run = [options_[0] for options_ in choices]
            run[position] = option
            runs.append(run)
    return runs


def compose_config(config_dir: Path, config_name: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def test_configuration_reference_is_current():
    reference = load_reference_script()
    expected = reference.build_reference()
    current = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert current == expected, f"docs/configuration.md differs from conf/; run `{reference.REGENERATE}` and commit the result"


def test_configuration_reference_lists_every_option():
    text = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    train_groups = [p for p in CONF.iterdir() if p.is_dir() and p != RENDER_CONF]
    options = [(group.name, path.stem) for group in train_groups for path in group.glob("*.yaml")]
    options += [("mode", path.stem) for path in (RENDER_CONF / "mode").glob("*.yaml")]
    options += [("spec", path.stem) for path in (RENDER_CONF / "presets").glob("*.yaml")]
    missing = [f"{group}={name}" for group, name in options if f"`{group}={name}`" not in text]
    assert not missing, f"docs/configuration.md has no section for {missing}"


def test_reference_shows_an_added_option(tmp_path):
    reference = load_reference_script()
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "optimizer" / "nadam.yaml").write_text("_target_: torch.optim.NAdam\n_partial_: true\nlr: 0.002\n")
    text = reference.build_reference(conf)
    assert "#### `optimizer=nadam`" in text
    assert "| `optimizer.lr` | `0.002` |" in text
    assert text != (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


def test_reference_notes_name_existing_keys(tmp_path):
    # A note for a key that conf/ does not have must stop the generator, so notes cannot go stale.
    reference = load_reference_script()
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "train.yaml").write_text("defaults:\n  - model: tiny\n")
    (conf / "model" / "tiny.yaml").write_text("width: 4\n")
    with pytest.raises(ValueError, match="model.negative_slope"):
        reference.build_reference(conf, train_notes={"model.negative_slope": "Slope."}, render_notes={})


def test_reference_takes_comments_from_yaml(tmp_path):
    reference = load_reference_script()
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "train.yaml").write_text("defaults:\n  - model: tiny\n# Seed of everything.\nseed: 3\n")
    (conf / "model" / "tiny.yaml").write_text("# A tiny model.\nnegative_slope: 0.1\nlayers: 2  # Blocks in the network.\n")
    (conf / "model" / "huge.yaml").write_text("negative_slope: 0.3\nlayers: 9\n")
    text = reference.build_reference(conf, train_notes={"model.negative_slope": "Slope of the activations."}, render_notes={})
    assert "| `seed` | `3` | Seed of everything. |" in text
    assert "#### `model=tiny` (default)\n\nA tiny model." in text
    assert "| `model.layers` | `2` | Blocks in the network. |" in text
    # huge.yaml has no comments, so it borrows them from tiny.yaml.
    assert "| `model.layers` | `9` | Blocks in the network. |" in text
    assert "| `model.negative_slope` | `0.3` | Slope of the activations. |" in text


def test_readmes_list_the_same_commands():
    english = shell_commands(README)
    japanese = shell_commands(README_JA)
    assert english, "README.md has no shell code blocks"
    only_english = [c for c in english if c not in japanese]
    only_japanese = [c for c in japanese if c not in english]
    assert not only_english, f"commands in README.md but not in README.ja.md: {only_english}"
    assert not only_japanese, f"commands in README.ja.md but not in README.md: {only_japanese}"
    assert english == japanese, "README.md and README.ja.md list the same commands in a different order"


def local_links(path: Path) -> set[str]:
    """Return the relative link and image targets of a Markdown file, without #anchors."""
    targets = re.findall(r"\]\(([^)#\s]+)", path.read_text(encoding="utf-8"))
    return {t for t in targets if "://" not in t}


def test_readmes_link_the_same_pages():
    english = local_links(README) - {"README.ja.md"}
    japanese = local_links(README_JA) - {"README.md"}
    assert english == japanese, f"only in README.md: {sorted(english - japanese)}; only in README.ja.md: {sorted(japanese - english)}"


def test_readme_keeps_the_ci_setup_commands():
    # .ci/run runs these two lines; the README must show them exactly.
    ci_lines = [line for line in (PROJECT_ROOT / ".ci" / "run").read_text().splitlines() if line.startswith(("python3 -m venv", ".venv/bin/python -m pytest"))]
    assert len(ci_lines) == 2
    commands = shell_commands(README)
    for line in ci_lines:
        assert line in commands, f"README.md lacks the set-up command {line!r}"


def test_readme_links_the_japanese_version():
    assert "](README.ja.md)" in README.read_text(encoding="utf-8")
    assert "](README.md)" in README_JA.read_text(encoding="utf-8")


def test_guides_name_only_existing_options():
    groups = {p.name for p in CONF.iterdir() if p.is_dir() and p != RENDER_CONF}
    unknown = []
    for page, command, arguments in guide_commands("train.py"):
        for argument in arguments:
            key, _, value = argument.lstrip("+").partition("=")
            if key not in groups:
                continue
            for option in re.split(r"[,\[\]]", value):
                if option and option != "null" and not (CONF / key / f"{option}.yaml").is_file():
                    unknown.append(f"{page}: {key}={option} in `{command}`")
    for page, command, arguments in guide_commands("render.py"):
        for argument in arguments:
            key, _, value = argument.partition("=")
            if key == "mode" and not (RENDER_CONF / "mode" / f"{value}.yaml").is_file():
                unknown.append(f"{page}: mode={value} in `{command}`")
            if key == "spec" and not value.endswith((".yaml", ".yml")) and not (RENDER_CONF / "presets" / f"{value}.yaml").is_file():
                unknown.append(f"{page}: spec={value} in `{command}`")
    assert not unknown, "the guides name options that conf/ does not have:\n" + "\n".join(unknown)


def test_guide_train_commands_compose():
    commands = guide_commands("train.py")
    assert len(commands) >= 5, "expected the README's training commands"
    for page, command, arguments in commands:
        # Hydra's own settings and flags (-m, --help) are not part of the job config.
        overrides = [a for a in arguments if not a.startswith(("-", "hydra.", "hydra/"))]
        for run in expand_sweeps(overrides):
            try:
                compose_config(CONF, "train", run)
            except Exception as error:  # noqa: BLE001 - the message names the page and the command
                pytest.fail(f"{page}: `{command}` does not compose with {run}: {error}")


def test_guide_render_commands_compose():
    commands = guide_commands("render.py")
    assert commands, "expected the README's render commands"
    for page, command, arguments in commands:
        # spec= is applied by render.py after composing; test_guides_name_only_existing_options checks presets.
        overrides = [a for a in arguments if not a.startswith(("-", "hydra.", "spec="))]
        try:
            compose_config(RENDER_CONF, "render", overrides)
        except Exception as error:  # noqa: BLE001 - the message names the page and the command
            pytest.fail(f"{page}: `{command}` does not compose: {error}")


def test_sweep_expansion():
    runs = expand_sweeps(["optimizer=adam,sgd", "model.kernels=[5,3],[3,3]", "data=synthetic"])
    assert runs == [
        ["optimizer=adam", "model.kernels=[5,3]", "data=synthetic"],
        ["optimizer=sgd", "model.kernels=[5,3]", "data=synthetic"],
        ["optimizer=adam", "model.kernels=[3,3]", "data=synthetic"],
    ]


def test_shell_commands_join_lines_and_drop_comments(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n```bash\n# a comment\n.venv/bin/python train.py \\\n  data=rafd   # trailing\n```\n\n"
        "```yaml\nmode: single\n```\n\n```console\n$ ls runs\n```\n"
    )
    assert shell_commands(page) == [".venv/bin/python train.py data=rafd", "ls runs"]
    assert script_arguments(".venv/bin/python train.py data=rafd && ls", "train.py") == ["data=rafd"]
    assert script_arguments("torchrun --nproc_per_node=2 train.py trainer=ddp", "train.py") == ["trainer=ddp"]
    assert script_arguments("ls", "train.py") is None


def test_every_guide_exists():
    missing = [page.name for page in GUIDES if not page.is_file()]
    assert not missing, f"missing guide pages: {missing}"
