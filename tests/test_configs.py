"""Every option of every config group composes, for every entry point that uses the group."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nir_colorize import CONFIG_DIR
from nir_colorize.utils.compose import compose_config

CONF = Path(CONFIG_DIR)
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra",))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


CASES = [(g, o) for g in GROUPS for o in options(g)]


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_group_option_composes(group: str, option: str, tmp_path: Path) -> None:
    prefix = "+" if group == "experiment" else ""
    overrides = [f"{prefix}{group}={option}", f"paths.log_dir={tmp_path}"]
    if group == "data" and option in ("vcip2020",):
        overrides.append(f"data.source.root={tmp_path}")
    if group == "experiment" and option == "reference_finetune":  # stage 2 needs stage 1's checkpoint
        overrides.append("stage1_ckpt=x.ckpt")
    cfg = compose_config("train", overrides, output_dir=tmp_path / "run")
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert container["paths"]["output_dir"] == str(tmp_path / "run")
    assert "model" in container and "data" in container and "trainer" in container


@pytest.mark.parametrize("name", ["eval", "predict"])
def test_entry_point_configs_compose(name: str, tmp_path: Path) -> None:
    cfg = compose_config(name, ["ckpt_path=x.ckpt", "input=in"] if name == "predict" else ["ckpt_path=x.ckpt"],
                         output_dir=tmp_path)
    OmegaConf.to_container(cfg, resolve=True)


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert options(group), f"config group {group} is empty"
