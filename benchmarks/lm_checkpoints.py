"""What a `melos lm train` stage folder weighs against the LM it adapts: a Qwen2-style LM saved in
bf16 (about 100M parameters, or a toy one), a float32 recipe, align + instruct with LoRA r=16 on
two tones, then `export_merged`. Prints one JSON line.

    python benchmarks/lm_checkpoints.py /tmp/lm-ckpt --size 100m
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from melos.lm.checkpoint import export_merged
from melos.lm.rows import Row, Turn, write_rows
from melos.lm.toy import train_tokenizer
from melos.lm.training import LMRecipe, LMStage, LoRA, train
from melos.models import load_encoder

SIZES = {
    "toy": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                num_key_value_heads=2),
    "100m": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=2),
}
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def weights(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.endswith(".safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", choices=sorted(SIZES), default="100m")
    args = parser.parse_args()
    root = args.out
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    load_encoder("mert-tiny").save_pretrained(root / "encoder")
    t = np.arange(24000) / 24000
    rows = []
    for k, freq in enumerate((150, 3000)):
        sf.write(root / f"t{k}.wav", 0.5 * np.sin(2 * np.pi * freq * t), 24000)
        rows.append(Row(f"r{k}", str(root / f"t{k}.wav"),
                        [Turn("<audio>\nDescribe this music.", f"a tone of {freq} Hz")]))
    write_rows(rows, root / "rows.jsonl")
    tokenizer = train_tokenizer(["Describe this music. a tone of 150 Hz"] * 20, 400)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
                                  "eos_token": "<|im_end|>"})
    tokenizer.chat_template = CHATML
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), **SIZES[args.size])).to(torch.bfloat16)
    lm.save_pretrained(root / "lm")
    tokenizer.save_pretrained(root / "lm")
    stage = dict(steps=3, lr_max=1e-3, lr_min=1e-4, batch_size=2, data="captions")
    recipe = LMRecipe(encoder=str(root / "encoder"), lm=str(root / "lm"), captions=str(root / "rows.jsonl"),
                      layers=[-1], stride=15, feature_cache=str(root / "cache"), precision="float32",
                      lora=LoRA(r=16, alpha=32, dropout=0.0),
                      stages=[LMStage(name="align", trainable=["model.connector.*"], **stage),
                              LMStage(name="instruct", trainable=["model.connector.*", "*lora_*"], **stage)])
    start = time.perf_counter()
    folder = train(recipe, root / "run", progress=False)
    wall = time.perf_counter() - start
    last_pt = root / "run" / "checkpoints" / "last.pt"
    state = torch.load(last_pt, weights_only=True)["model"]
    trainable_bytes = sum(v.numel() * v.element_size() for v in state.values())
    metrics = [json.loads(x) for x in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    step_s = np.median([2 / m["throughput/audio_s_per_s"] for m in metrics if m["stage"] == "instruct"])
    print(json.dumps({
        "lm": args.size, "lm_params": sum(p.numel() for p in lm.parameters()),
        "trainable_params": sum(v.numel() for v in state.values()), "trainable_bytes_fp32": trainable_bytes,
        "stage_folder_weight_bytes": weights(folder), "ratio": weights(folder) / trainable_bytes,
        "last_pt_bytes": last_pt.stat().st_size, "merged_export_bytes": weights(export_merged(folder, root / "merged")),
        "instruct_step_s_median": float(step_s), "train_wall_s": wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
