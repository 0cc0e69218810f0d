"""Every Python example of the README and the docs runs, so none can go stale.

Each fenced ```python block of README.md and docs/**/*.md is one test, named by its file and
line, run on its own in an empty working directory after tests/doc_context.py (the model,
data and training functions the examples call "yours"). A block that defines an `objective`
and does not run it has it run on two trials. Blocks that need what these machines do not
have are listed in SKIP with the reason; every entry must still match a block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import hyperlaw as hl

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = Path(__file__).with_name("doc_context.py")

#: (file, text the block contains) -> why it is not run here
SKIP: dict[tuple[str, str], str] = {
    ("docs/guide.md", 'executor="ray", n_workers=8'):
        "needs a PostgreSQL server at db/hpo and a Ray cluster with GPUs",
    ("docs/guide.md", "gpus_per_trial=2"):
        "needs a machine with 8 GPUs (tests/test_gpus.py tests gpus_per_trial itself)",
    ("docs/guide.md", "model = LitNet(lr="):
        "a fragment around the reader's LightningModule; tests/test_lightning.py runs the "
        "same calls on a real one",
    ("docs/guide.md", "trainer = Trainer(model_init="):
        "a fragment around the reader's model and datasets; tests/test_transformers.py runs "
        "hyperlaw_search on a real Trainer",
    ("docs/guide.md", "model = build_and_compile(trial.params)"):
        "a fragment around the reader's Keras model; tests/test_keras.py runs the same calls",
    ("docs/guide.md", "soup = study.soup(valid_loss, top_k=8)"):
        "a fragment around the reader's network and data; tests/test_soups.py makes greedy "
        "and uniform soups of real fine-tunes",
    ("docs/guide.md", "[winner] = study.reevaluate(train, top_k=1"):
        "a fragment around the reader's training; tests/test_seeds.py runs the protocol on "
        "real training",
    ("docs/guide.md", "run_processes(trial, train, 2,"):
        "the other ranks import `train` from a module, which a block run on its own is not; "
        "tests/test_distributed.py runs the same recipe with torch DDP and Lightning",
}

_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    path: str  # relative to the checkout
    line: int  # of the block's first line of code
    source: str

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file (indented ones too, dedented)."""
    return python_blocks_of(path, path.read_text())


def python_blocks_of(path: Path, text: str) -> list[Block]:
    """The ```python blocks of the Markdown `text` of `path`."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, lang = match.groups()
        end = next((j for j in range(i + 1, len(lines))
                    if lines[j].strip() == "```"), len(lines))
        if lang == "python":
            body = [line[len(indent):] for line in lines[i + 1:end]]
            blocks.append(Block(str(path.relative_to(ROOT)), i + 2, "\n".join(body) + "\n"))
        i = end + 1
    return blocks


def all_blocks() -> list[Block]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [block for path in files for block in python_blocks(path)]


def _skip_reason(block: Block) -> str | None:
    return next((reason for (path, text), reason in SKIP.items()
                 if path == block.path and text in block.source), None)


def _run(source: str, filename: str, namespace: dict[str, Any], first_line: int = 1) -> None:
    # padded so that a traceback gives the line in the Markdown file
    code = compile("\n" * (first_line - 1) + source, filename, "exec")
    exec(code, namespace)


@pytest.fixture(autouse=True)
def _no_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """`figure.show()` shows nothing: a test has no browser or notebook to show it in."""
    import plotly.graph_objects as go

    monkeypatch.setattr(go.Figure, "show", lambda self, *args, **kwargs: None)


def run_block(block: Block) -> None:
    """Run `block` after the context, in the current directory; AssertionError naming the
    block's file and line when it fails."""
    # a module name nothing can import: worker processes get the functions by value
    namespace: dict[str, Any] = {"__name__": "doc_example"}
    _run(CONTEXT.read_text(), str(CONTEXT), namespace)
    given_objective = namespace["objective"]
    try:
        _run(block.source, str(ROOT / block.path), namespace, block.line)
        objective = namespace.get("objective")
        if objective is not given_objective and "optimize(" not in block.source:
            study = hl.create_study(space=namespace["space"], seed=0)
            study.optimize(objective, n_trials=2, catch=())
    except Exception as exc:
        raise AssertionError(f"the example at {block.id} fails: "
                             f"{type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize("block", all_blocks(), ids=lambda b: b.id)
def test_example_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = _skip_reason(block)
    if reason is not None:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    run_block(block)


def test_a_failing_example_is_named_by_file_and_line(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    page = ROOT / "docs" / "no-such-page.md"  # never written: the blocks come from a string
    monkeypatch.chdir(tmp_path)
    (block,) = python_blocks_of(page, "Text.\n\n```python\nstudy.tell(trial)\n```\n")
    assert block.id == "docs/no-such-page.md:4"
    with pytest.raises(AssertionError, match=r"docs/no-such-page.md:4 fails: NameError"):
        run_block(block)
    # an objective a block only defines is run
    (block,) = python_blocks_of(page, "```python\ndef objective(trial):\n    return 1 / 0\n```")
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        run_block(block)


def test_every_skip_matches_a_block() -> None:
    blocks = all_blocks()
    unused = [key for key in SKIP
              if not any(b.path == key[0] and key[1] in b.source for b in blocks)]
    assert unused == [], f"SKIP entries that match no block (remove them): {unused}"
