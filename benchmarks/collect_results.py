"""Write benchmarks/RESULTS.md from the per-question tables in benchmarks/results/.

Each benchmark script writes its latest table (with machine and command) to
``benchmarks/results/<name>.md``; this script gathers them in a fixed order:

    python benchmarks/collect_results.py
"""

from __future__ import annotations

from pathlib import Path

ORDER = ["overhead", "hvp", "coloring", "detection", "sparse", "pytree", "operators", "least_squares", "device"]
HERE = Path(__file__).parent


def main() -> None:
    parts = [
        "# Benchmark results\n",
        "The latest table of each benchmark, gathered by `python benchmarks/collect_results.py`",
        "from `benchmarks/results/*.md` (each section names its machine, versions and command).",
        "Machine for all but the device check (an H100 GPU machine, named in its section): 2-core x86-64",
        "(Intel Xeon), 24 GiB; timings are medians of interleaved runs after warm-up, engines pinned to\n"
        "one thread unless a section says otherwise.\n",
    ]
    files = {p.stem: p for p in (HERE / "results").glob("*.md")}
    for name in ORDER + sorted(set(files) - set(ORDER)):
        if name in files:
            text = files[name].read_text().strip()
            # demote the file's headings one level under this document's title
            text = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
            parts.append(f"<!-- from benchmarks/results/{name}.md -->\n{text}\n")
    (HERE / "RESULTS.md").write_text("\n".join(parts))
    print(f"wrote {HERE / 'RESULTS.md'} from {len(files)} result files")


if __name__ == "__main__":
    main()
