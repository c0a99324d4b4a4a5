"""requirements.txt and envs/*.yaml pin the same versions, so conda and pip users agree; the
dev and stand-in requirements are pinned too, and the runtime needs none of the stand-in's."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def pip_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r"):
            continue
        name, _, version = line.partition("==")
        assert version, f"{path.name}: '{line}' is not pinned with =="
        pins[name.lower()] = version
    return pins


REQUIREMENTS = ("requirements.txt", "requirements-dev.txt", "scripts/standin/requirements.txt")


def test_every_requirement_is_pinned_exactly():
    for path in REQUIREMENTS:
        assert pip_pins(REPO / path), path


def test_the_runtime_does_not_need_the_stand_ins_dependencies():
    runtime = set(pip_pins(REPO / "requirements.txt"))
    standin = set(pip_pins(REPO / "scripts/standin/requirements.txt"))
    assert standin and not runtime & standin
    conda = {dep.split("=")[0] for env in (REPO / "envs").glob("*.yaml")
             for dep in yaml.safe_load(env.read_text())["dependencies"]}  # fmt: skip
    assert not conda & standin


def test_conda_envs_match_requirements():
    pins = pip_pins(REPO / "requirements.txt")
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        deps = yaml.safe_load(env_file.read_text())["dependencies"]
        for dep in deps:
            name, version = re.fullmatch(r"([\w.-]+)=([\w.]+)", dep).groups()
            if name == "python":
                assert version == "3.11", f"{env_file.name}: python {version}"
                continue
            assert pins.get(name.lower()) == version, f"{env_file.name}: {dep} vs requirements.txt"


def test_constraints_agree_with_requirements():
    """constraints.txt (the full freeze) must not contradict a direct pin."""
    frozen = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            frozen[name.lower().replace("_", "-")] = version
    for path in REQUIREMENTS:
        for name, version in pip_pins(REPO / path).items():
            assert frozen.get(name.replace("_", "-")) == version, f"{path}: {name}=={version}"
