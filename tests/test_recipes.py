"""Every recipe in recipes/ parses into its settings; overrides and errors behave; verification pair sets load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facekit.errors import InputError
from facekit.recipes import build, read_recipe
from facekit.train.aggregator_config import AggregatorConfig
from facekit.train.seqface_config import SeqFaceConfig, VerifyConfig
from tests.conftest import shared

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("seqface_*.yaml")) + sorted(RECIPES.glob("aggregator_*.yaml")),
                         ids=lambda p: p.name)
def test_training_recipes_parse(path):
    cls = SeqFaceConfig if path.name.startswith("seqface") else AggregatorConfig
    cfg = build(cls, read_recipe(path), str(path))
    cfg.check(str(path))


def test_paper_settings_in_recipes():
    r27 = build(SeqFaceConfig, read_recipe(RECIPES / "seqface_resnet27_msceleb_celebseq.yaml"), "r27")
    assert (r27.model.backbone, r27.optim.batch_size, r27.optim.milestones, r27.optim.steps) == \
        ("resnet27", 128, (300_000, 600_000), 800_000)
    assert (r27.loss.weight, r27.loss.dsa.p, r27.loss.dsa.alpha, r27.loss.dsa.beta) == (0.04, 0.001, 2.0, 1.0)
    agg = build(AggregatorConfig, read_recipe(RECIPES / "aggregator_voxceleb2.yaml"), "agg")
    assert (agg.loss.dis, agg.loss.rec, agg.loss.adv, agg.loss.tv) == (1.0, 0.5, 1.0, 1e-4)
    assert (agg.optim.batch_size, agg.optim.lr, agg.optim.lr_late, agg.data.set_size) == (6, 5e-5, 1.25e-5, 10)


def test_overrides_and_type_errors(tmp_path):
    data = read_recipe(RECIPES / "seqface_small_real.yaml", ["optim.lr=0.1", "loss.dsa.p=0.25", "model.init=x.pt"])
    cfg = build(SeqFaceConfig, data, "r")
    assert cfg.optim.lr == 0.1 and cfg.loss.dsa.p == 0.25 and cfg.model.init == Path("x.pt")
    with pytest.raises(InputError, match=r"r.loss.dsa: unknown setting 'q'"):
        build(SeqFaceConfig, read_recipe(None, ["loss.dsa.q=1"]), "r")
    with pytest.raises(InputError, match="expected key.sub=value"):
        read_recipe(None, ["optim.lr"])
    held = build(AggregatorConfig, read_recipe(None, ['data.holdout_identities=["b", "a"]']), "r")
    assert held.data.holdout_identities == ["b", "a"]  # int | list: each alternative is tried in order
    assert build(AggregatorConfig, read_recipe(None, ["data.holdout_identities=3"]), "r").data.holdout_identities == 3
    with pytest.raises(InputError, match="holdout_identities: expected a list"):
        build(AggregatorConfig, read_recipe(None, ["data.holdout_identities=x"]), "r")
    (tmp_path / "bad.yaml").write_text("data: [1, 2\n")
    with pytest.raises(InputError, match="bad.yaml: not valid YAML"):
        read_recipe(tmp_path / "bad.yaml")


def _tiny_backbone():
    from facekit.models import build_backbone

    torch.manual_seed(0)
    return build_backbone("sphereface20", num_features=8, input_size=32, widths=(8, 8, 8, 8))


def test_verification_on_lfw_layout(tmp_path):
    from facekit.train.seqface_config import DataConfig
    from facekit.train.verify import load_pair_set, verify

    rng = np.random.default_rng(0)
    for name in ("A_a", "B_b"):
        (tmp_path / "lfw" / name).mkdir(parents=True)
        for k in (1, 2):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
                tmp_path / "lfw" / name / f"{name}_{k:04d}.jpg")
    (tmp_path / "pairs.txt").write_text("1 1\nA_a 1 2\nA_a 1 B_b 2\n")
    pairs = load_pair_set(VerifyConfig(lfw_root=tmp_path / "lfw", lfw_pairs=tmp_path / "pairs.txt"))
    assert pairs.same.tolist() == [True, False] and len(pairs.images) == 3  # A_a 1 is shared
    res = verify(_tiny_backbone(), pairs, DataConfig(load_size=36, input_size=32), 127.5, 128.0, torch.device("cpu"))
    assert res["pairs"] == 2 and 0.0 <= res["accuracy"] <= 1.0


def test_verification_on_insightface_bin():
    from facekit.train.seqface_config import DataConfig
    from facekit.train.verify import load_pair_set, verify

    path = shared("insightface/recognition/arcface_paddle/test_tipc/data/small_lfw.bin")
    pairs = load_pair_set(VerifyConfig(bin=path))
    assert len(pairs.same) == 10 and pairs.same.all() and len(pairs.images) == 20
    res = verify(_tiny_backbone(), pairs, DataConfig(load_size=36, input_size=32), 127.5, 128.0, torch.device("cpu"))
    assert res["set"] == "bin:small_lfw.bin" and res["pairs"] == 10


def test_resnet27_recipe_is_two_stages():
    """Stage 1 trains the baseline from scratch with SphereFace's annealed lambda (1000 at step 0 -> 5); stage 2
    fine-tunes it with SeqFace's fixed lambda = 5, sequences and DSA."""
    from facekit.losses import build_head

    base = build(SeqFaceConfig, read_recipe(RECIPES / "seqface_resnet27_msceleb_baseline.yaml"), "b")
    tune = build(SeqFaceConfig, read_recipe(RECIPES / "seqface_resnet27_msceleb_celebseq.yaml"), "t")
    assert base.data.sequences is None and base.loss.auxiliary == "none" and base.model.init is None
    assert tune.data.sequences is not None and tune.loss.auxiliary == "dsa" and tune.model.init is not None
    assert base.model.backbone == tune.model.backbone == "resnet27"
    head_b = build_head(base.loss.chief, 8, 3, **base.loss.chief_kwargs)
    head_t = build_head(tune.loss.chief, 8, 3, **tune.loss.chief_kwargs)
    # SphereFace schedule lambda_t = max(5, 1000 / (1 + 0.12 t)): 1000 at t = 0, 1000 / 13 = 76.92 at t = 100
    assert head_b.lambda_ == 1000.0
    head_b.set_step(100)
    assert head_b.lambda_ == pytest.approx(1000 / 13)
    head_t.set_step(100)
    assert head_t.lambda_ == 5.0


def test_chief_kwargs_example_in_the_settings_is_valid():
    import re

    import yaml

    from facekit.losses import build_head
    from facekit.train import seqface_config

    source = Path(seqface_config.__file__).read_text()
    example = yaml.safe_load(re.search(r"chief_kwargs: dict = .*# e\.g\. (\{.*\})", source).group(1))
    head = build_head("l2sphereface", 8, 3, **example)
    assert (head.scale, head.m, head.lambda_) == (32.0, 4, 5.0)
    with pytest.raises(InputError, match="l2sphereface has no setting 'lambda_'.*lambda_base"):
        build_head("l2sphereface", 8, 3, lambda_=5)


def test_recipes_batch_sizes_divide_over_their_gpus_or_say_how():
    """Every recipe's global batch splits over 1, 2, 4 and 8 GPUs, or the recipe says how to change it; a
    torchrun command in a recipe's comments uses a GPU count its batch divides."""
    import re

    import yaml

    recipes = Path(__file__).resolve().parents[1] / "recipes"
    for path in sorted(recipes.glob("*.yaml")):
        text = path.read_text()
        batch = (yaml.safe_load(text).get("optim") or {}).get("batch_size")
        if batch is None:
            continue
        for n in re.findall(r"--nproc_per_node=(\d+)", text):
            assert batch % int(n) == 0, f"{path.name}: batch {batch} over {n} GPUs"
        if any(batch % n for n in (1, 2, 4, 8)):
            assert "--set optim.batch_size=" in text, f"{path.name}: batch {batch} does not split over 4 or 8 GPUs"
