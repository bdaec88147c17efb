"""The trainer's speed settings: compile=auto (on CUDA only; names and checkpoints unchanged when on), fused
AdamW and TF32 on CUDA only, so a CPU run computes exactly what it did before."""

from __future__ import annotations

import pytest
import torch

from training import checkpoint
from training.config import from_json, make_config
from training.models import load_variant
from training.models import make_config as model_config
from training.tokenizers import ByteTokenizer
from training.trainer import compile_backbone, compiles, make_optimizer, train, use_tf32
from wikimix.errors import ConfigError

torch.set_num_threads(1)
CPU = torch.device("cpu")


def smoke(out, **overrides):
    settings = {"progress": False, "threads": 1, **overrides}
    return make_config("ar", budget="smoke", data="synthetic:markov", out=str(out), overrides=settings)


def build(cfg):
    torch.manual_seed(0)
    tok = ByteTokenizer()
    return load_variant(cfg.variant).build(model_config(cfg.variant, cfg.model), tok.vocab_size, tok.special)


def test_compile_is_auto_by_default_and_takes_on_off_and_old_booleans(tmp_path):
    assert smoke(tmp_path).compile == "auto"
    assert smoke(tmp_path, compile="on").compile == "on" and smoke(tmp_path, compile="false").compile == "off"
    with pytest.raises(ConfigError, match="compile must be 'auto', 'on' or 'off'"):
        smoke(tmp_path, compile="sometimes")
    saved = {**smoke(tmp_path).to_json(), "compile": True}  # config.json of a run from before 'auto'
    assert from_json(saved).compile == "on" and from_json({**saved, "compile": False}).compile == "off"
    assert not compiles(smoke(tmp_path), CPU) and compiles(smoke(tmp_path), torch.device("cuda"))
    assert compiles(smoke(tmp_path, compile="on"), CPU) and not compiles(smoke(tmp_path, compile="off"), CPU)


def test_a_compiled_backbone_keeps_every_parameter_name(tmp_path):
    cfg = smoke(tmp_path, compile="on")
    eager, compiled = build(cfg), build(cfg)
    compile_backbone(compiled, cfg, CPU)
    assert compiled.backbone._compiled_call_impl is not None  # compiled in place ...
    assert list(compiled.state_dict()) == list(eager.state_dict())  # ... under the same names
    eager.load_state_dict(compiled.state_dict())  # so a checkpoint of either loads into the other
    compile_backbone(eager, smoke(tmp_path), CPU)  # 'auto' on CPU: left eager
    assert eager.backbone._compiled_call_impl is None


def test_cpu_runs_keep_the_default_adamw_and_fp32_matmul_precision(tmp_path):
    cfg = smoke(tmp_path)
    optimizer = make_optimizer(build(cfg), cfg)
    assert not optimizer.defaults["fused"]
    before = torch.get_float32_matmul_precision()
    use_tf32(cfg, CPU)
    assert torch.get_float32_matmul_precision() == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runs_fuse_adamw_use_tf32_and_compile_with_checkpoints_an_eager_model_loads(tmp_path):
    cfg = smoke(tmp_path / "run", device="cuda", max_steps=2, eval_every=0)
    assert make_optimizer(build(cfg).cuda(), cfg).defaults["fused"]
    use_tf32(cfg, torch.device("cuda"))
    assert torch.get_float32_matmul_precision() == "high"
    train(cfg)  # compile=auto compiles on CUDA
    model, _, _ = checkpoint.load_checkpoint(tmp_path / "run", "cpu")  # an eager model loads its weights
    assert list(model.state_dict()) == list(build(cfg).state_dict())
