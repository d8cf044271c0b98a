"""Parameter counts of every preset x conditioning x backbone, with the depth each gets (SiMBA the
preset's; the others, and SiMBA with EinFFT, the depth whose count is closest): docs/model.md's
presets table. Counted on the meta device (no weights allocated), card 1024, one codebook.

    python benchmarks/preset_sizes.py --out results/preset_sizes.json
"""

from __future__ import annotations

import argparse

from ssmusic.io.atomic import write_json_atomic
from ssmusic.model.presets import PRESETS, count_parameters, preset

BACKBONES = ("simba", "mamba", "transformer")


def sizes() -> dict:
    out: dict = {}
    for name in PRESETS:
        for conditioning in ("prefix", "cross"):
            row = {}
            for backbone in BACKBONES:
                config = preset(name, backbone=backbone, conditioning=conditioning)
                row[backbone] = {"parameters": count_parameters(config), "layers": config.n_layers}
            einfft = preset(name, conditioning=conditioning, channel_mixer="einfft")
            row["simba_einfft"] = {"parameters": count_parameters(einfft), "layers": einfft.n_layers}
            out[f"{name}/{conditioning}"] = row
    return out


def table(results: dict) -> str:
    lines = ["| preset | conditioning | simba | mamba | transformer | simba + EinFFT |", "|---|---|---|---|---|---|"]
    for key, row in results.items():
        name, conditioning = key.split("/")
        cells = [f"{row[b]['parameters'] / 1e6:.2f}M ({row[b]['layers']} layers)"
                 for b in (*BACKBONES, "simba_einfft")]
        lines.append(f"| {name} | {conditioning} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the counts as JSON here")
    args = parser.parse_args()
    results = sizes()
    print(table(results))
    if args.out:
        write_json_atomic(args.out, {"command": "python benchmarks/preset_sizes.py --out " + args.out,
                                     "sizes": results})


if __name__ == "__main__":
    main()
